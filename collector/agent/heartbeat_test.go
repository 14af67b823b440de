package agent

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector"
)

// TestHeartbeatReportsTheAgent: the heartbeat carries the host, the address
// the agent reaches the server from, version, OS, every collector with its
// status and last error, the spool size and the dropped count.
func TestHeartbeatReportsTheAgent(t *testing.T) {
	srv := newFakeServer(t)
	seq := &sequence{perRun: 1}
	factory := func(kind string, opts map[string]any) (collector.Collector, error) {
		if kind == "broken" {
			return funcCollector{"broken", func(context.Context, collector.Emit) error { return errors.New("connection refused") }}, nil
		}
		return seq.factory(kind, opts)
	}
	cfg := testConfig(srv, t.TempDir())
	cfg.Heartbeat.Interval = time.Second
	cfg.Collectors["broken"] = CollectorConfig{Interval: 20 * time.Millisecond}
	runAgent(t, cfg, Deps{Factory: factory, Version: "1.2.3", Log: testLog(t)})

	var hb map[string]any
	// The first heartbeat goes out at start, maybe before seq's first run: wait
	// for one sent after both collectors have run.
	eventually(t, "a heartbeat shows seq up and the broken collector's error", func() bool {
		hb = srv.lastHeartbeat()
		var seqUp, brokenErr bool
		for _, c := range collectorsOf(hb) {
			seqUp = seqUp || c["name"] == "seq" && c["up"] == true
			brokenErr = brokenErr || c["name"] == "broken" && c["lastError"] == "connection refused"
		}
		return seqUp && brokenErr
	})
	for key, want := range map[string]any{
		"host": "h1", "ip": "127.0.0.1", "version": "1.2.3", "os": runtime.GOOS + "/" + runtime.GOARCH,
		"droppedPoints": 0.0, "intervalSeconds": 1.0,
	} {
		if hb[key] != want {
			t.Errorf("heartbeat %s = %v, want %v", key, hb[key], want)
		}
	}
	if _, ok := hb["spoolBytes"].(float64); !ok {
		t.Errorf("heartbeat spoolBytes = %v, want a number", hb["spoolBytes"])
	}
	status := map[string]bool{}
	for _, c := range collectorsOf(hb) {
		status[c["name"].(string)] = c["up"].(bool)
		if _, ok := c["lastRun"].(string); !ok {
			t.Errorf("collector %v has no lastRun", c)
		}
	}
	if len(status) != 2 || !status["seq"] || status["broken"] {
		t.Errorf("heartbeat collectors %v, want seq up and broken down", status)
	}
}

func collectorsOf(hb map[string]any) []map[string]any {
	list, _ := hb["collectors"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
