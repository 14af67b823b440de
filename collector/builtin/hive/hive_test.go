package hive

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

func instance(addr string) string {
	return strings.ReplaceAll(strings.TrimPrefix(addr, "http://"), ":", "_")
}

func TestHiveServer2AndMetastore(t *testing.T) {
	fixture, err := os.ReadFile("testdata/hiveserver2-jmx.json")
	if err != nil {
		t.Fatal(err)
	}
	hs2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jmx" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(fixture)
	}))
	defer hs2.Close()
	metastore, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer metastore.Close()

	c, err := New(Config{HiveServer2URL: hs2.URL, Metastore: metastore.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	var sink pointtest.Sink
	if err := c.Collect(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	hs2Tags := pointtest.Tags("instance", instance(hs2.URL))
	for metric, want := range map[string]float64{
		"hadoop.hive.hiveserver2.up":                                         1,
		"hadoop.hive.hiveserver2.open_connections.count":                     14,
		"hadoop.hive.hiveserver2.hs2_open_sessions":                          9,
		"hadoop.hive.hiveserver2.memory.heap.used":                           512211000,
		"hadoop.hive.hiveserver2.api_hs2_operation_RUNNING.count":            2011,
		"hadoop.hive.hiveserver2.api_hs2_operation_RUNNING.mean":             812.4,
		"hadoop.hive.hiveserver2.hs2_completed_sql_operation_FINISHED.count": 1980,
		"hadoop.hive.hiveserver2.cpu_load":                                   0.042,
		"hadoop.hive.hiveserver2.open_files":                                 388,
	} {
		if v, ok := sink.Lookup(metric, hs2Tags); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", metric, v, ok, want)
		}
	}
	msTags := pointtest.Tags("instance", instance(metastore.Addr().String()))
	if v, ok := sink.Lookup("hadoop.hive.metastore.up", msTags); !ok || v != 1 {
		t.Errorf("metastore up = %v (present %v)", v, ok)
	}
	if _, ok := sink.Lookup("hadoop.hive.metastore.connect_ms", msTags); !ok {
		t.Error("no metastore connect time")
	}
}

// TestMetastoreDown checks that a metastore that refuses connections is
// reported down while HiveServer2 is still read.
func TestMetastoreDown(t *testing.T) {
	hs2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"beans":[]}`))
	}))
	defer hs2.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c, _ := New(Config{HiveServer2URL: hs2.URL, Metastore: addr})
	var sink pointtest.Sink
	err := c.Collect(context.Background(), sink.Emit)
	if err == nil || !strings.Contains(err.Error(), "metastore "+addr) {
		t.Fatalf("error %v, want the metastore's", err)
	}
	if v, ok := sink.Lookup("hadoop.hive.metastore.up", pointtest.Tags("instance", instance(addr))); !ok || v != 0 {
		t.Errorf("metastore up = %v (present %v), want 0", v, ok)
	}
	if v, ok := sink.Lookup("hadoop.hive.hiveserver2.up", pointtest.Tags("instance", instance(hs2.URL))); !ok || v != 1 {
		t.Errorf("hiveserver2 up = %v (present %v), want 1", v, ok)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "nothing to check"},
		{Config{HiveServer2URL: "hs2:10002"}, "hiveserver2_url:"},
		{Config{Metastore: "metastore"}, "metastore:"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
