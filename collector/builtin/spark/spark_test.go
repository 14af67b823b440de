package spark

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

const app = "app-20241125040012-0007"

func sparkServer(t *testing.T, failExecutors bool) *httptest.Server {
	files := map[string]string{
		"/api/v1/applications":                       "applications.json",
		"/api/v1/applications/" + app + "/jobs":      "jobs.json",
		"/api/v1/applications/" + app + "/executors": "executors.json",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := files[r.URL.Path]
		if !ok || (failExecutors && strings.HasSuffix(r.URL.Path, "/executors")) {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/api/v1/applications" && r.URL.Query().Get("status") != "running" {
			t.Errorf("applications listed without status=running: %s", r.URL)
		}
		b, _ := os.ReadFile("testdata/" + name)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestApplicationMetrics(t *testing.T) {
	srv := sparkServer(t, false)
	c, err := New(Config{URL: srv.URL, MaxApps: 5})
	if err != nil {
		t.Fatal(err)
	}
	var sink pointtest.Sink
	if err := c.Collect(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	inst := strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_")
	got := sink.Index()
	for _, tc := range []struct {
		metric string
		kv     []string
		want   float64
	}{
		{"spark.up", nil, 1},
		{"spark.applications", nil, 1},
		{"spark.jobs", []string{"app", app, "status", "RUNNING"}, 1},
		{"spark.jobs", []string{"app", app, "status", "FAILED"}, 1},
		{"spark.jobs", []string{"app", app, "status", "UNKNOWN"}, 0},
		{"spark.jobs.tasks.active", []string{"app", app}, 16},
		{"spark.jobs.tasks.completed", []string{"app", app}, 416},
		{"spark.jobs.tasks.failed", []string{"app", app}, 5},
		{"spark.jobs.tasks.skipped", []string{"app", app}, 20},
		{"spark.executors", []string{"app", app}, 2},
		{"spark.executor.cores", []string{"app", app, "executor", "1"}, 8},
		{"spark.executor.memory_used", []string{"app", app, "executor", "1"}, 412318720},
		{"spark.executor.gc_time_ms", []string{"app", app, "executor", "1"}, 30210},
		{"spark.executor.max_memory", []string{"app", app, "executor", "driver"}, 2101975449},
	} {
		tags := pointtest.Tags(append([]string{"instance", inst}, tc.kv...)...)
		if v, ok := got[pointtest.Key(tc.metric, tags)]; !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", pointtest.Key(tc.metric, tags), v, ok, tc.want)
		}
	}
}

func TestApplicationEndsMidway(t *testing.T) {
	srv := sparkServer(t, true)
	c, _ := New(Config{URL: srv.URL, MaxApps: 5})
	var sink pointtest.Sink
	err := c.Collect(context.Background(), sink.Emit)
	if err == nil || !strings.Contains(err.Error(), "executors") {
		t.Fatalf("error %v, want the failed executors call", err)
	}
	if !sink.Has("spark.jobs.tasks.active") {
		t.Error("the jobs read before the failure were not emitted")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{URL: "driver:4040", MaxApps: 1}); err == nil || !strings.Contains(err.Error(), "url:") {
		t.Errorf("bad url: %v", err)
	}
	if _, err := New(Config{URL: "http://d:4040"}); err == nil || !strings.Contains(err.Error(), "max_apps") {
		t.Errorf("max_apps 0: %v", err)
	}
}
