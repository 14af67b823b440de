package durtext_test

import (
	"errors"
	"testing"
	"time"

	"github.com/amas-eye/amas/internal/durtext"
)

var units = []durtext.Unit{{Suffix: "h", D: time.Hour}, {Suffix: "m", D: time.Minute}, {Suffix: "ms", D: time.Millisecond}}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr error
	}{
		{"1h30m", 90 * time.Minute, nil},
		{" 5ms ", 5 * time.Millisecond, nil},
		{"2m2ms", 2*time.Minute + 2*time.Millisecond, nil},
		{"0m", 0, nil},
		{"", 0, durtext.ErrSyntax},
		{"5s", 0, durtext.ErrSyntax}, // not one of units
		{"h", 0, durtext.ErrSyntax},
		{"5", 0, durtext.ErrSyntax},
		{"1234567890123m", 0, durtext.ErrSyntax},
		{"999999999999h", 0, durtext.ErrOverflow},
		{"2000000h2000000h2000000h", 0, durtext.ErrOverflow},
	} {
		got, err := durtext.Parse(tc.in, units)
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Minute, "1h30m"},
		{-2 * time.Millisecond, "-2ms"},
		{time.Hour + 1500*time.Microsecond, "1h1ms500µs"},
	} {
		if got := durtext.Format(tc.in, units); got != tc.want {
			t.Errorf("Format(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
