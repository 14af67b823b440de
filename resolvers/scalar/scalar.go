// Package scalar marshals the custom GraphQL scalars of the Amas schema (Time,
// Duration) for gqlgen, and carries the error type for input the client got wrong.
package scalar

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/amas-eye/amas/internal/durtext"
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

// durationUnits are the units of a Duration, largest first.
var durationUnits = []durtext.Unit{
	{Suffix: "w", D: 7 * 24 * time.Hour},
	{Suffix: "d", D: 24 * time.Hour},
	{Suffix: "h", D: time.Hour},
	{Suffix: "m", D: time.Minute},
	{Suffix: "s", D: time.Second},
	{Suffix: "ms", D: time.Millisecond},
	{Suffix: "us", D: time.Microsecond},
	{Suffix: "ns", D: time.Nanosecond},
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
	d, err := durtext.Parse(s, durationUnits)
	if err != nil || d <= 0 {
		return 0, Inputf("invalid Duration %q: want a positive whole number and a unit (ms, s, m, h, d, w), such as 10s, 5m, 1h or 1d", s)
	}
	return d, nil
}

// FormatDuration writes d with the units ParseDuration reads, largest first.
func FormatDuration(d time.Duration) string { return durtext.Format(d, durationUnits) }
