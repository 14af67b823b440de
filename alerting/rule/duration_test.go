package rule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting/rule"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"0", 0, ""},
		{" 0s ", 0, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"15s", 15 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1w2d", 9 * 24 * time.Hour, ""},
		{"5m5m", 10 * time.Minute, ""},
		{"", 0, `invalid duration "": want whole numbers with units ms, s, m, h, d, w`},
		{"5", 0, `invalid duration "5": want whole numbers`},
		{"5x", 0, `invalid duration "5x": want whole numbers`},
		{"1.5h", 0, `invalid duration "1.5h": want whole numbers`},
		{"-5m", 0, `invalid duration "-5m": want whole numbers`},
		{"10us", 0, `invalid duration "10us": want whole numbers`},
		{"1234567890123s", 0, `invalid duration "1234567890123s": want whole numbers`},
		{"999999999999w", 0, `invalid duration "999999999999w": too long`},
		{"15000w15000w", 0, `invalid duration "15000w15000w": too long`},
	} {
		got, err := rule.ParseDuration(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.D() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got.D(), err, tc.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{250 * time.Millisecond, "250ms"},
		{90 * time.Minute, "1h30m"},
		{9*24*time.Hour + time.Second, "1w2d1s"},
		{-90 * time.Second, "-1m30s"},
		{time.Millisecond + 1500*time.Nanosecond, "1ms1.5µs"},
	} {
		if got := rule.Duration(tc.in).String(); got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}
