package impala

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

func TestImpaladMetrics(t *testing.T) {
	fixture, err := os.ReadFile("testdata/impalad-metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || !r.URL.Query().Has("json") {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(fixture)
	}))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, Daemon: "impalad"})
	if err != nil {
		t.Fatal(err)
	}
	var sink pointtest.Sink
	if err := c.Collect(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	tags := pointtest.Tags("instance", strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_"))
	got := sink.Index()
	for metric, want := range map[string]float64{
		"impala.impalad.up":                                                 1,
		"impala.impalad.impala-server.ready":                                1,
		"impala.impalad.impala-server.num-queries":                          1287,
		"impala.impalad.impala-server.num-queries-expired":                  3,
		"impala.impalad.impala-server.ddl-durations-ms.25th":                12,
		"impala.impalad.impala-server.ddl-durations-ms.99.9th":              2100,
		"impala.impalad.impala-server.ddl-durations-ms.count":               412,
		"impala.impalad.statestore-subscriber.heartbeat-interval-time.last": 1.002,
		"impala.impalad.statestore-subscriber.heartbeat-interval-time.avg":  1.0011,
		"impala.impalad.statestore-subscriber.heartbeat-interval-time.max":  2.31,
		"impala.impalad.impala.thrift-server.backend.connections-in-use":    6,
		"impala.impalad.tcmalloc.bytes-in-use":                              351002211,
	} {
		if v, ok := got[pointtest.Key(metric, tags)]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", metric, v, ok, want)
		}
	}
	if sink.Has("impala.impalad.impala-server.version") {
		t.Error("the version string became a metric")
	}
}

func TestImpalaDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL, Daemon: "catalogd"})
	var sink pointtest.Sink
	if err := c.Collect(context.Background(), sink.Emit); err == nil {
		t.Fatal("no error for a 404")
	}
	if v, ok := sink.Lookup("impala.catalogd.up", pointtest.Tags("instance", strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_"))); !ok || v != 0 {
		t.Errorf("up = %v (present %v), want 0", v, ok)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{URL: "http://h:25000", Daemon: "coordinator"}); err == nil || !strings.Contains(err.Error(), "daemon:") {
		t.Errorf("bad daemon: %v", err)
	}
}
