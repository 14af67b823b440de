package scalar_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/resolvers/scalar"
)

func TestParseDuration(t *testing.T) {
	const want = "want a positive whole number and a unit (ms, s, m, h, d, w), such as 10s, 5m, 1h or 1d"
	for _, tc := range []struct {
		in  string
		out time.Duration // 0: an InputError
	}{
		{"10s", 10 * time.Second},
		{" 250ms ", 250 * time.Millisecond},
		{"1h30m", 90 * time.Minute},
		{"1w2d", 9 * 24 * time.Hour},
		{"3us", 3 * time.Microsecond},
		{"7ns", 7},
		{"0s", 0},
		{"0", 0},
		{"", 0},
		{"5", 0},
		{"5x", 0},
		{"1.5h", 0},
		{"-5m", 0},
		{"1234567890123s", 0},
		{"999999999999w", 0},
		{"15000w15000w", 0},
	} {
		got, err := scalar.ParseDuration(tc.in)
		if tc.out == 0 {
			var ie *scalar.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), `invalid Duration "`+tc.in+`": `+want) {
				t.Errorf("ParseDuration(%q) = %v, %v; want an InputError naming it", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.out {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.out)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{250 * time.Millisecond, "250ms"},
		{90 * time.Minute, "1h30m"},
		{9*24*time.Hour + time.Second, "1w2d1s"},
		{-90 * time.Second, "-1m30s"},
		{time.Millisecond + 1500*time.Nanosecond, "1ms1us500ns"},
	} {
		got := scalar.FormatDuration(tc.in)
		if got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.in > 0 {
			if back, err := scalar.ParseDuration(got); err != nil || back != tc.in {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.in)
			}
		}
	}
}
