// Package durtext reads and writes lengths of time as whole numbers with units,
// largest first ("1h30m", "1w2d", "250ms"). Each caller brings its own units and
// its own rules about zero and its own error messages.
package durtext

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Unit is one suffix and the length it stands for.
type Unit struct {
	Suffix string // one or two letters
	D      time.Duration
}

var (
	// ErrSyntax is text that is not one or more <whole number><unit> terms.
	ErrSyntax = errors.New("not whole numbers with units")
	// ErrOverflow is a term or a sum beyond what a time.Duration holds (~292 years).
	ErrOverflow = errors.New("too long")
)

// Parse reads s, after trimming spaces, as one or more terms of a whole number
// (at most 12 digits) and one of units; two-letter suffixes are tried first, so
// that "ms" is not read as "m". The error is ErrSyntax or ErrOverflow.
func Parse(s string, units []Unit) (time.Duration, error) {
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, ErrSyntax
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 12 {
			return 0, ErrSyntax
		}
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		rest = rest[i:]
		var unit time.Duration
		if unit, rest = parseUnit(rest, units); unit == 0 {
			return 0, ErrSyntax
		}
		term := time.Duration(n) * unit
		if term/unit != time.Duration(n) || total+term < total {
			return 0, ErrOverflow
		}
		total += term
	}
	return total, nil
}

func parseUnit(s string, units []Unit) (time.Duration, string) {
	for _, n := range []int{2, 1} {
		for _, u := range units {
			if len(u.Suffix) == n && strings.HasPrefix(s, u.Suffix) {
				return u.D, s[n:]
			}
		}
	}
	return 0, s
}

// Format writes d with units (largest first), each unit at most once; a
// remainder below the smallest unit is written as time.Duration writes it. Zero
// is "0s".
func Format(d time.Duration, units []Unit) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range units {
		if n := d / u.D; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.Suffix)
			d -= n * u.D
		}
	}
	if d > 0 {
		b.WriteString(d.String())
	}
	return b.String()
}
