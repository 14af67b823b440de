package kafka

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

func TestBrokerMetrics(t *testing.T) {
	fixture, err := os.ReadFile("testdata/jolokia-bulk-read.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqs []map[string]string
		if r.Method != http.MethodPost || r.URL.Path != "/jolokia/" || json.NewDecoder(r.Body).Decode(&reqs) != nil || len(reqs) != len(reads) {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		_, _ = w.Write(fixture)
	}))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL + "/jolokia"})
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
		metric, topic string
		want          float64
	}{
		{"kafka.up", "", 1},
		{"kafka.broker.brokerstate", "", 3},
		{"kafka.broker.delayfetch", "", 12},
		{"kafka.broker.delayrebalance", "", 1},
		{"kafka.broker.partitioncount", "", 48},
		{"kafka.broker.underreplicatedpartitions", "", 2},
		{"kafka.broker.isrshrinkspeed", "", 9},
		{"kafka.broker.topic.byteinpersecond", "", 918273645},
		{"kafka.broker.topic.byteinpersecond", "orders", 618273645},
		{"kafka.broker.topic.byteoutpersecond", "clicks", 600000000},
		{"kafka.broker.topic.totalproducerequestpersecond", "orders", 120100},
		{"kafka.controller.activecontrollerconut", "", 1},
		{"kafka.controller.leaderelectiontime", "", 12.75},
		{"kafka.controller.leaderelectiontime.count", "", 31},
	} {
		tags := pointtest.Tags("instance", inst)
		if tc.topic != "" {
			tags["topic"] = tc.topic
		}
		if v, ok := got[pointtest.Key(tc.metric, tags)]; !ok || v != tc.want {
			t.Errorf("%s{topic=%s} = %v (present %v), want %v", tc.metric, tc.topic, v, ok, tc.want)
		}
	}
	if sink.Has("kafka.controller.uncleanLeaderElection") {
		t.Error("an MBean Jolokia answered 404 for became a metric")
	}
}

func TestBrokerDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL + "/jolokia"})
	var sink pointtest.Sink
	if err := c.Collect(context.Background(), sink.Emit); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v, want the 503", err)
	}
	if v, ok := sink.Lookup("kafka.up", pointtest.Tags("instance", strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_"))); !ok || v != 0 {
		t.Errorf("kafka.up = %v (present %v), want 0", v, ok)
	}
}

func TestKeyProperty(t *testing.T) {
	if got := keyProperty("kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=orders-v2", "topic"); got != "orders-v2" {
		t.Errorf("got %q", got)
	}
}
