package rule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultInterval is the evaluation interval of a rule that gives none.
const DefaultInterval = time.Minute

// Duration is a length of time written as whole numbers with units, largest first:
// 15s, 5m, 1h30m, 1d, 1w (units ms, s, m, h, d, w), in JSON, YAML and expressions.
type Duration time.Duration

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

var durationUnits = []struct {
	suffix string
	d      time.Duration
}{
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// ParseDuration reads a Duration; "0" and "0s" are zero.
func ParseDuration(s string) (Duration, error) {
	rest := strings.TrimSpace(s)
	if rest == "0" {
		return 0, nil
	}
	bad := fmt.Errorf("invalid duration %q: want whole numbers with units ms, s, m, h, d, w, such as 15s, 5m or 1h30m", s)
	if rest == "" {
		return 0, bad
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 12 {
			return 0, bad
		}
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		rest = rest[i:]
		unit := time.Duration(0)
		switch {
		case strings.HasPrefix(rest, "ms"):
			unit, rest = time.Millisecond, rest[2:]
		case rest != "":
			for _, u := range durationUnits {
				if len(u.suffix) == 1 && rest[0] == u.suffix[0] {
					unit, rest = u.d, rest[1:]
					break
				}
			}
		}
		if unit == 0 {
			return 0, bad
		}
		term := time.Duration(n) * unit
		if term/unit != time.Duration(n) || total+term < total {
			return 0, fmt.Errorf("invalid duration %q: too long", s)
		}
		total += term
	}
	return Duration(total), nil
}

// String writes d as ParseDuration reads it.
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	v := time.Duration(d)
	if v < 0 {
		b.WriteByte('-')
		v = -v
	}
	for _, u := range durationUnits {
		if n := v / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.suffix)
			v -= n * u.d
		}
	}
	if v > 0 {
		b.WriteString(v.String())
	}
	return b.String()
}

// MarshalText writes d as a string such as "5m".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a string such as "5m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
