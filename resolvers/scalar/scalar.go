// Package scalar marshals the custom GraphQL scalars of the Amas schema (Time,
// Duration) for gqlgen, and carries the error type for input the client got wrong.
package scalar

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// InputError is a value the client sent that cannot be used. Its text is shown to
// the user as it is, so it names the offending value.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// Inputf formats an InputError.
func Inputf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// MarshalTime writes t as an RFC 3339 string in UTC.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		b := make([]byte, 0, 40)
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		_, _ = w.Write(b)
	})
}

// UnmarshalTime reads an RFC 3339 string.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, Inputf("invalid Time %v: want an RFC 3339 string such as 2024-05-01T12:00:00Z", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Inputf("invalid Time %q: want an RFC 3339 string such as 2024-05-01T12:00:00Z", s)
	}
	return t, nil
}

type durationUnit struct {
	suffix string
	d      time.Duration
}

// durationUnits are the units of a Duration, largest first. Parsing tries the
// two-letter suffixes first, so that "ms" is not read as "m".
var durationUnits = []durationUnit{
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
	{"us", time.Microsecond},
	{"ns", time.Nanosecond},
}

func parseUnit(s string) (time.Duration, string) {
	for _, n := range []int{2, 1} {
		for _, u := range durationUnits {
			if len(u.suffix) == n && strings.HasPrefix(s, u.suffix) {
				return u.d, s[n:]
			}
		}
	}
	return 0, s
}

// MarshalDuration writes d in the form ParseDuration reads, largest units first
// ("1d", "1h30m", "250ms").
func MarshalDuration(d time.Duration) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(FormatDuration(d)))
	})
}

// UnmarshalDuration reads a Duration such as "10s", "5m", "1h", "1d" or "1h30m".
func UnmarshalDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, Inputf("invalid Duration %v: want a string such as 10s, 5m, 1h or 1d", v)
	}
	return ParseDuration(s)
}

// ParseDuration reads one or more <whole number><unit> terms, units w, d, h, m, s,
// ms (and us, ns, which FormatDuration may write); the result must be positive.
func ParseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, Inputf("invalid Duration %q: want a positive whole number and a unit (ms, s, m, h, d, w), such as 10s, 5m, 1h or 1d", s)
	}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return bad()
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 12 {
			return bad()
		}
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		rest = rest[i:]
		var unit time.Duration
		if unit, rest = parseUnit(rest); unit == 0 {
			return bad()
		}
		// Overflow: a term or the sum beyond ~292 years.
		term := time.Duration(n) * unit
		if term/unit != time.Duration(n) || total+term < total {
			return bad()
		}
		total += term
	}
	if total <= 0 {
		return bad()
	}
	return total, nil
}

// FormatDuration writes d with the units ParseDuration reads, largest first.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range durationUnits {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.suffix)
			d -= n * u.d
		}
	}
	return b.String()
}
