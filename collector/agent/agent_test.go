package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector"
)

// sequence is a built-in collector emitting test.seq = 0, 1, 2... (perRun
// values per run). Agents share one, as two runs of the agent on a host share
// the counters they read, so the server must end up with one gapless run.
type sequence struct {
	perRun int
	next   atomic.Int64
}

func (s *sequence) factory(string, map[string]any) (collector.Collector, error) {
	return funcCollector{"seq", func(_ context.Context, emit collector.Emit) error {
		for range s.perRun {
			v := s.next.Add(1) - 1
			emit(collector.Point{Metric: "test.seq", Time: time.Unix(1700000000+v, 0), Value: float64(v), Tags: map[string]string{"k": "v"}})
		}
		return nil
	}}, nil
}

// emitted is how many values the collector produced so far.
func (s *sequence) emitted() int { return int(s.next.Load()) }

// runningAgent is an Agent whose Run goroutine the test owns.
type runningAgent struct {
	*Agent
	stop func()
}

func startAgent(t *testing.T, srv *fakeServer, spoolDir string, spoolMax int64, seq *sequence) runningAgent {
	t.Helper()
	cfg := testConfig(srv, spoolDir)
	cfg.Spool.MaxBytes = spoolMax
	return runAgent(t, cfg, Deps{Factory: seq.factory, Version: "test", Log: testLog(t)})
}

// testConfig ships to srv as host h1 with env=test, in small batches with
// short pauses, and runs the seq collector every 20ms.
func testConfig(srv *fakeServer, spoolDir string) Config {
	cfg := DefaultConfig()
	cfg.Server, cfg.Token, cfg.Hostname = srv.URL, "secret", "h1"
	cfg.Tags = map[string]string{"env": "test"}
	cfg.Spool = SpoolConfig{Dir: spoolDir, MaxBytes: 1 << 20}
	cfg.Shipping = ShippingConfig{BatchSize: 50, FlushInterval: 10 * time.Millisecond, Timeout: 5 * time.Second, MaxBackoff: 40 * time.Millisecond}
	cfg.Heartbeat.Interval = 20 * time.Millisecond
	cfg.Management.Listen = ""
	cfg.Collectors = map[string]CollectorConfig{"seq": {Interval: 20 * time.Millisecond}}
	return cfg
}

// runAgent builds an agent and runs it until the test ends or stop is called.
func runAgent(t *testing.T, cfg Config, deps Deps) runningAgent {
	t.Helper()
	a, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return runningAgent{Agent: a, stop: stop}
}

// seqValues is the test.seq values the server stored, in arrival order.
func (f *fakeServer) seqValues() []float64 {
	var out []float64
	for _, p := range f.stored() {
		if p.Metric == "test.seq" {
			out = append(out, p.Value)
			if p.Tags["host"] != "h1" || p.Tags["env"] != "test" || p.Tags["k"] != "v" {
				f.t.Errorf("point stored with tags %v: want host=h1 env=test k=v", p.Tags)
			}
		}
	}
	return out
}

// TestAgentShipsThroughAnOutageAndARestart: points made while the server
// answers 503 wait in the spool and arrive in order once it is back; points
// spooled by an agent that stopped during the outage are shipped by the next
// agent on the same spool. The server ends up with every value exactly once.
func TestAgentShipsThroughAnOutageAndARestart(t *testing.T) {
	srv := newFakeServer(t)
	spoolDir := t.TempDir()
	seq := &sequence{perRun: 5}

	first := startAgent(t, srv, spoolDir, 1<<20, seq)
	eventually(t, "points shipped while the server is up", func() bool { return len(srv.seqValues()) >= 20 })

	srv.down.Store(true)
	shippedBeforeOutage := len(srv.seqValues())
	eventually(t, "points pile up in the spool during the outage", func() bool {
		return seq.emitted() >= shippedBeforeOutage+100 && first.Status().SpoolBytes > 0
	})
	srv.down.Store(false)
	madeDuringOutage := seq.emitted()
	eventually(t, "the spool is replayed once the server is back", func() bool {
		return len(srv.seqValues()) >= madeDuringOutage
	})

	srv.down.Store(true)
	eventually(t, "more points spooled in a second outage", func() bool { return first.Status().SpoolBytes > 0 })
	first.stop() // the agent stops with the server still down
	spooledAtStop := seq.emitted()
	if got := len(srv.seqValues()); got >= spooledAtStop {
		t.Fatalf("the server has %d of %d values although it was down at the stop", got, spooledAtStop)
	}

	srv.down.Store(false)
	second := startAgent(t, srv, spoolDir, 1<<20, seq)
	eventually(t, "the new agent ships what the old one spooled", func() bool {
		return len(srv.seqValues()) >= spooledAtStop
	})
	second.stop()

	got := srv.seqValues()
	if want := seq.emitted(); !slices.Equal(got, seq32(want)) {
		i := firstMismatch(got, seq32(want))
		t.Fatalf("the server got %d values, want 0..%d once each and in order; first wrong at %d: %v", len(got), want-1, i, got[max(0, i-10):min(len(got), i+10)])
	}
	if second.Status().DroppedPoints != 0 {
		t.Errorf("dropped %d points with a spool that never filled", second.Status().DroppedPoints)
	}
}

// TestAgentSpoolFullDropsOldestAndReportsIt: during a long outage a small
// spool keeps the newest points; the drop is counted in the heartbeat and in
// amas.agent.points_dropped, and what was kept arrives in order.
func TestAgentSpoolFullDropsOldestAndReportsIt(t *testing.T) {
	srv := newFakeServer(t)
	srv.down.Store(true)
	seq := &sequence{perRun: 20}

	a := startAgent(t, srv, t.TempDir(), 16<<10, seq)
	eventually(t, "the spool overflows", func() bool { return a.Status().DroppedPoints > 0 })
	srv.down.Store(false)
	eventually(t, "a heartbeat reports the dropped points", func() bool {
		hb := srv.lastHeartbeat()
		dropped, _ := hb["droppedPoints"].(float64)
		return dropped > 0
	})
	a.stop() // ships the rest of the spool: the server is up

	got := srv.seqValues()
	if len(got) == 0 {
		t.Fatal("nothing shipped after the outage")
	}
	// The oldest values were dropped: what arrived is one gapless run that
	// starts after 0 and ends with the last value made.
	if got[0] == 0 || !slices.Equal(got, seqFrom(int(got[0]), seq.emitted())) {
		t.Fatalf("the server got values %v..%v (%d): want the newest gapless run up to %d", got[0], got[len(got)-1], len(got), seq.emitted()-1)
	}
	var reported float64
	for _, p := range srv.stored() {
		if p.Metric == MetricDroppedPoints {
			reported = max(reported, p.Value)
		}
	}
	if reported == 0 {
		t.Errorf("no %s point above 0 reached the server", MetricDroppedPoints)
	}
}

func seq32(n int) []float64 { return seqFrom(0, n) }

func seqFrom(from, to int) []float64 {
	out := make([]float64, 0, max(0, to-from))
	for v := from; v < to; v++ {
		out = append(out, float64(v))
	}
	return out
}

func firstMismatch(got, want []float64) int {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return i
		}
	}
	return min(len(got), len(want))
}

// TestCollectOnce is --once: every collector (built-in and script) runs once,
// the points are shipped, and the call returns. Against a server that is
// down it fails and keeps the points spooled for the next start.
func TestCollectOnce(t *testing.T) {
	scripts := t.TempDir()
	if err := os.MkdirAll(filepath.Join(scripts, "10"), 0o755); err != nil {
		t.Fatal(err)
	}
	line := "#!/bin/sh\necho 'test.script 1700000000 7 lang=sh'\n"
	if err := os.WriteFile(filepath.Join(scripts, "10", "hello.sh"), []byte(line), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := newFakeServer(t)
	spool := t.TempDir()
	seq := &sequence{perRun: 3}
	once := func() error {
		cfg := testConfig(srv, spool)
		cfg.CollectorsDir = scripts
		a, err := New(cfg, Deps{Factory: seq.factory, Version: "test", Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		return a.CollectOnce(context.Background())
	}

	srv.down.Store(true)
	if err := once(); err == nil || !strings.Contains(err.Error(), "stay in the spool") {
		t.Fatalf("--once against a server answering 503: %v, want the points kept in the spool", err)
	}
	srv.down.Store(false)
	if err := once(); err != nil {
		t.Fatal(err)
	}
	if got := srv.seqValues(); !slices.Equal(got, seq32(6)) {
		t.Fatalf("after two --once runs, the first while the server was down, the server has %v, want 0..5 once each", got)
	}
	var script, health int
	for _, p := range srv.stored() {
		switch {
		case p.Metric == "test.script" && p.Value == 7 && p.Tags["lang"] == "sh" && p.Tags["host"] == "h1":
			script++
		case p.Metric == MetricCollectorUp && p.Tags["collector"] == "seq" && p.Value == 1:
			health++
		}
	}
	if script != 2 || health != 2 {
		t.Errorf("the server has %d script points and %d seq health points, want 2 of each (one per run)", script, health)
	}
}
