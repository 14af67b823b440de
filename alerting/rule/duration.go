package rule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amas-eye/amas/internal/durtext"
)

// DefaultInterval is the evaluation interval of a rule that gives none.
const DefaultInterval = time.Minute

// Duration is a length of time written as whole numbers with units, largest first:
// 15s, 5m, 1h30m, 1d, 1w (units ms, s, m, h, d, w), in JSON, YAML and expressions.
type Duration time.Duration

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

var durationUnits = []durtext.Unit{
	{Suffix: "w", D: 7 * 24 * time.Hour},
	{Suffix: "d", D: 24 * time.Hour},
	{Suffix: "h", D: time.Hour},
	{Suffix: "m", D: time.Minute},
	{Suffix: "s", D: time.Second},
	{Suffix: "ms", D: time.Millisecond},
}

// ParseDuration reads a Duration; "0" and "0s" are zero.
func ParseDuration(s string) (Duration, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	d, err := durtext.Parse(s, durationUnits)
	switch {
	case errors.Is(err, durtext.ErrOverflow):
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	case err != nil:
		return 0, fmt.Errorf("invalid duration %q: want whole numbers with units ms, s, m, h, d, w, such as 15s, 5m or 1h30m", s)
	}
	return Duration(d), nil
}

// String writes d as ParseDuration reads it.
func (d Duration) String() string { return durtext.Format(time.Duration(d), durationUnits) }

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
