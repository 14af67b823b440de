package ingest

import (
	"testing"
	"time"
)

// TestValidateReportsTheLeastBadTag: of several bad tags, the message names
// the one with the least key, whatever order the map iterates in.
func TestValidateReportsTheLeastBadTag(t *testing.T) {
	p := Point{Metric: "m", Time: time.Unix(1356998400, 0), Value: 1,
		Tags: map[string]string{"zz": "bad!", "b": "ok", "aa!": "x", "m": "bad?"}}
	const want = `Invalid tag name ("aa!"): illegal character: '!'`
	for range 50 {
		if err := DefaultLimits.Validate(p); err == nil || err.Error() != want {
			t.Fatalf("Validate = %v, want %s", err, want)
		}
	}
}
