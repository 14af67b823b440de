package opentsdb

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/ingest"
)

func TestParsePutLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    ingest.Point
		wantErr string // substring; empty means valid
		reason  string
	}{
		{line: "put sys.cpu.user 1356998400 42.5 host=web01 cpu=0",
			want: ingest.Point{Metric: "sys.cpu.user", Time: time.Unix(1356998400, 0).UTC(), Value: 42.5, Tags: map[string]string{"host": "web01", "cpu": "0"}}},
		{line: "put  m   1356998400123  -7  host=a",
			want: ingest.Point{Metric: "m", Time: time.UnixMilli(1356998400123).UTC(), Value: -7, Tags: map[string]string{"host": "a"}}},
		{line: "put m 1356998400 1 host=a\r", wantErr: "illegal character", reason: ingest.ReasonTag},
		{line: "put m 1356998400.250 1e3 host=a",
			want: ingest.Point{Metric: "m", Time: time.UnixMilli(1356998400250).UTC(), Value: 1000, Tags: map[string]string{"host": "a"}}},
		{line: "put 温度.室内 1356998400 1 地点=北京",
			want: ingest.Point{Metric: "温度.室内", Time: time.Unix(1356998400, 0).UTC(), Value: 1, Tags: map[string]string{"地点": "北京"}}},
		{line: "put\tm\t1356998400\t1\thost=a",
			want: ingest.Point{Metric: "m", Time: time.Unix(1356998400, 0).UTC(), Value: 1, Tags: map[string]string{"host": "a"}}},
		{line: "put m 1356998400 99999999999999999999 host=a",
			want: ingest.Point{Metric: "m", Time: time.Unix(1356998400, 0).UTC(), Value: 1e20, Tags: map[string]string{"host": "a"}}},
		{line: "version", wantErr: `not a put command: "version"`, reason: "malformed"},
		{line: "put m 1356998400.1234 1 host=a", wantErr: "Invalid timestamp: 1356998400.1234", reason: ingest.ReasonTimestamp},
		{line: "put m 1356998400 1", wantErr: "not enough arguments (need least 4, got 3)", reason: "malformed"},
		{line: "put m 1356998400 NaN host=a", wantErr: "invalid value: NaN", reason: ingest.ReasonValue},
		{line: "put m 1356998400 Inf host=a", wantErr: "invalid value: Inf", reason: ingest.ReasonValue},
		{line: "put m 1356998400 0x10 host=a", wantErr: "invalid value: 0x10", reason: ingest.ReasonValue},
		{line: "put m 1356998400 1e999 host=a", wantErr: "invalid value: 1e999", reason: ingest.ReasonValue},
		{line: "put m -5 1 host=a", wantErr: "Invalid timestamp: -5", reason: ingest.ReasonTimestamp},
		{line: "put m 12345678901234 1 host=a", wantErr: "more than 13 digits", reason: ingest.ReasonTimestamp},
		{line: "put m now 1 host=a", wantErr: "Invalid timestamp: now", reason: ingest.ReasonTimestamp},
		{line: "put m 1356998400 1 host", wantErr: "invalid tag: host", reason: ingest.ReasonTag},
		{line: "put m 1356998400 1 host=", wantErr: "invalid tag: host=", reason: ingest.ReasonTag},
		{line: "put m 1356998400 1 host=a host=b", wantErr: "duplicate tag: host=b", reason: ingest.ReasonTag},
		{line: "put m!x 1356998400 1 host=a", wantErr: `Invalid metric name ("m!x"): illegal character: '!'`, reason: ingest.ReasonMetric},
		{line: "put m 1356998400 1 h@st=a", wantErr: "Invalid tag name", reason: ingest.ReasonTag},
		{line: "put m 1356998400 1 a=1 b=2 c=3", wantErr: "Too many tags: 3 maximum allowed: 2", reason: ingest.ReasonTooMany},
	} {
		limits := ingest.Limits{MaxTagsPerPoint: 2, MaxNameLength: 256}
		got, err := ParsePutLine(tc.line, limits)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.line, err, tc.wantErr)
			} else if r := ingest.ReasonOf(err); r != tc.reason {
				t.Errorf("%q: reason %s, want %s", tc.line, r, tc.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got.Metric != tc.want.Metric || !got.Time.Equal(tc.want.Time) || got.Value != tc.want.Value || !sameTags(got.Tags, tc.want.Tags) {
			t.Errorf("%q: got %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// FuzzParsePutLine checks that any line either fails or yields a point that
// passes validation and survives formatting and parsing again unchanged.
func FuzzParsePutLine(f *testing.F) {
	f.Add("put sys.cpu.user 1356998400 42.5 host=web01 cpu=0")
	limits := ingest.DefaultLimits
	f.Fuzz(func(t *testing.T, line string) {
		p, err := ParsePutLine(line, limits)
		// With a tag cache, the first parse fills it and the second reads it: both
		// must answer as the parse without one.
		cache := newTagCache()
		for pass := range 2 {
			c, cerr := parsePutLine(line, limits, cache)
			if (cerr == nil) != (err == nil) || cerr != nil && cerr.Error() != err.Error() ||
				c.Metric != p.Metric || !c.Time.Equal(p.Time) || !sameFloat(c.Value, p.Value) || !sameTags(c.Tags, p.Tags) {
				t.Fatalf("pass %d with a tag cache: %+v, %v; without: %+v, %v", pass, c, cerr, p, err)
			}
		}
		if err != nil {
			return
		}
		if err := limits.Validate(p); err != nil {
			t.Fatalf("accepted an invalid point %+v: %v", p, err)
		}
		again, err := ParsePutLine(formatPut(p), limits)
		if err != nil {
			t.Fatalf("formatted point %q does not parse: %v", formatPut(p), err)
		}
		if again.Metric != p.Metric || !again.Time.Equal(p.Time) || again.Value != p.Value || !sameTags(again.Tags, p.Tags) {
			t.Fatalf("round trip changed %+v into %+v", p, again)
		}
	})
}

// formatPut writes p as a put line, as the agent's dry run does.
func formatPut(p ingest.Point) string {
	var b strings.Builder
	b.WriteString("put " + p.Metric + " ")
	b.WriteString(putTimestamp(p.Time))
	b.WriteString(" " + strconv.FormatFloat(p.Value, 'g', -1, 64))
	for k, v := range p.Tags {
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

// sameFloat is == that also holds for two NaNs (refused points carry zero values).
func sameFloat(a, b float64) bool { return a == b || a != a && b != b }
