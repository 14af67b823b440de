package points

import (
	"testing"
	"time"

	"github.com/amas-eye/amas/collector"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"valid name unchanged", "proc.net.bytes", "proc.net.bytes"},
		{"space in a mount point", "/mnt/my data", "/mnt/my_data"},
		{"colon of a recording rule", "job:http_requests:rate5m", "job_http_requests_rate5m"},
		{"unicode letters kept", "café", "café"},
		{"plus sign", "+Inf", "_Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Clean(tc.in); got != tc.want {
				t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAddMergesTagsAndDropsEmptyValues(t *testing.T) {
	var got collector.Point
	w := Writer{Emit: func(p collector.Point) { got = p }, Time: time.Unix(1, 0), Tags: map[string]string{"instance": "a:1"}}
	w.With("db", "x").Add("m", 2, "state", "idle in transaction", "empty", "")
	want := map[string]string{"instance": "a_1", "db": "x", "state": "idle_in_transaction"}
	if len(got.Tags) != len(want) {
		t.Fatalf("tags = %v, want %v", got.Tags, want)
	}
	for k, v := range want {
		if got.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, got.Tags[k], v)
		}
	}
}
