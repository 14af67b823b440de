package script

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/ingest"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		wantErr    string
		wantTime   time.Time
		wantTags   int
	}{
		{name: "seconds, no tags", line: "proc.loadavg.1min 1700000000 0.5", wantTime: time.Unix(1700000000, 0)},
		{name: "milliseconds and tags", line: "m 1700000000123 1 a=b c=d", wantTime: time.UnixMilli(1700000000123), wantTags: 2},
		{name: "a timestamp after 2020 is fine", line: "m 4102444800 1", wantTime: time.Unix(4102444800, 0)},
		{name: "too few fields", line: "m 1700000000", wantErr: "got 2 fields"},
		{name: "bad timestamp", line: "m 17000x 1", wantErr: "Invalid timestamp"},
		{name: "bad value", line: "m 1700000000 x", wantErr: `value "x" is not a number`},
		{name: "NaN", line: "m 1700000000 NaN", wantErr: "NaN"},
		{name: "bad tag", line: "m 1700000000 1 a", wantErr: `tag "a" is not key=value`},
		{name: "duplicate tag", line: "m 1700000000 1 a=1 a=2", wantErr: "given twice"},
		{name: "bad metric", line: "m! 1700000000 1", wantErr: "illegal character"},
		{name: "the host tag the agent adds counts toward the limit", line: "m 1700000000 1" + manyTags(32, false), wantErr: "Too many tags: 33"},
		{name: "a line's own host tag is not counted twice", line: "m 1700000000 1" + manyTags(32, true), wantTime: time.Unix(1700000000, 0), wantTags: 32},
		{name: "too long", line: "m 1700000000 1 a=" + strings.Repeat("x", MaxLineBytes), wantErr: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseLine(tc.line, ingest.DefaultLimits)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !p.Time.Equal(tc.wantTime) || len(p.Tags) != tc.wantTags {
				t.Fatalf("point %+v", p)
			}
		})
	}
}

// manyTags is n tags " t0=v t1=v ...", the first one host=h when withHost.
func manyTags(n int, withHost bool) string {
	var sb strings.Builder
	for i := range n {
		if i == 0 && withHost {
			sb.WriteString(" host=h")
			continue
		}
		fmt.Fprintf(&sb, " t%d=v", i)
	}
	return sb.String()
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{emit: func(s string) { lines = append(lines, s) }}
	for _, chunk := range []string{"a b", " c\r\nd\n", strings.Repeat("x", MaxLineBytes+10), "yy\nlast"} {
		_, _ = w.Write([]byte(chunk))
	}
	w.flush()
	if len(lines) != 4 || lines[0] != "a b c" || lines[1] != "d" || len(lines[2]) != MaxLineBytes+1 || lines[3] != "last" {
		t.Fatalf("lines %q", lines)
	}
}
