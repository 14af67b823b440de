package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector"
)

// funcCollector is a Collector made of a function.
type funcCollector struct {
	name    string
	collect func(ctx context.Context, emit collector.Emit) error
}

func (c funcCollector) Name() string { return c.name }
func (c funcCollector) Collect(ctx context.Context, emit collector.Emit) error {
	return c.collect(ctx, emit)
}

func factoryOf(cs map[string]collector.Collector) Factory {
	return func(kind string, _ map[string]any) (collector.Collector, error) {
		if c, ok := cs[kind]; ok {
			return c, nil
		}
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
}

// pointLog records emitted points and signals each one by collector name.
type pointLog struct {
	mu     sync.Mutex
	points []collector.Point
	byName map[string]chan collector.Point
}

func newPointLog(names ...string) *pointLog {
	l := &pointLog{byName: map[string]chan collector.Point{}}
	for _, n := range names {
		l.byName[n] = make(chan collector.Point, 10000)
	}
	return l
}

func (l *pointLog) emit(name string, p collector.Point) {
	l.mu.Lock()
	l.points = append(l.points, p)
	l.mu.Unlock()
	if ch, ok := l.byName[name]; ok {
		ch <- p
	}
}

// next waits for the next point of a collector whose metric is metric.
func (l *pointLog) next(t *testing.T, name, metric string) collector.Point {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-l.byName[name]:
			if p.Metric == metric {
				return p
			}
		case <-deadline:
			t.Fatalf("no %s point from %s", metric, name)
		}
	}
}

func enabled(on bool) *bool { return &on }

func TestSchedulerIsolation(t *testing.T) {
	release := make(chan struct{})
	var hangCalls, hangConcurrent, hangMax atomic.Int32
	cs := map[string]collector.Collector{
		"good": funcCollector{"good", func(_ context.Context, emit collector.Emit) error {
			emit(collector.Point{Metric: "good.value", Time: time.Now(), Value: 1, Tags: map[string]string{"k": "v"}})
			return nil
		}},
		"failing": funcCollector{"failing", func(context.Context, collector.Emit) error { return errors.New("target unreachable") }},
		"panicky": funcCollector{"panicky", func(context.Context, collector.Emit) error { panic("nil map") }},
		// hang ignores its context until the test ends: the worst case.
		"hang": funcCollector{"hang", func(ctx context.Context, _ collector.Emit) error {
			hangCalls.Add(1)
			n := hangConcurrent.Add(1)
			defer hangConcurrent.Add(-1)
			if n > hangMax.Load() {
				hangMax.Store(n)
			}
			<-release
			return ctx.Err()
		}},
	}
	log := newPointLog("good", "failing", "panicky", "hang")
	s := NewScheduler(factoryOf(cs), log.emit, time.Now, testLog(t))
	configs := map[string]CollectorConfig{}
	for name := range cs {
		configs[name] = CollectorConfig{Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, Enabled: enabled(true)}
	}
	if err := s.Apply(configs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, time.Second) }()

	for range 5 { // the good collector keeps its pace while the others misbehave
		if up := log.next(t, "good", MetricCollectorUp); up.Value != 1 || up.Tags["collector"] != "good" {
			t.Fatalf("good collector health: %+v", up)
		}
	}
	for _, name := range []string{"failing", "panicky", "hang", "hang"} {
		if up := log.next(t, name, MetricCollectorUp); up.Value != 0 {
			t.Fatalf("%s reported up=%v", name, up.Value)
		}
	}
	errCount := log.next(t, "failing", MetricCollectorErrors)
	if errCount.Value < 1 {
		t.Fatalf("failing collector errors counter = %v", errCount.Value)
	}
	want := map[string]string{"failing": "target unreachable", "panicky": "panic: nil map", "hang": "still running"}
	for _, st := range s.Statuses() {
		if w, ok := want[st.Name]; ok && (st.Up || !strings.Contains(st.LastError, w)) {
			t.Errorf("%s: up=%v lastError=%q, want an error containing %q", st.Name, st.Up, st.LastError, w)
		}
		if st.Name == "good" && (!st.Up || st.LastError != "") {
			t.Errorf("good: %+v", st)
		}
	}
	if hangCalls.Load() != 1 || hangMax.Load() != 1 {
		t.Errorf("hung collector called %d times (max %d at once): want one call while it hangs", hangCalls.Load(), hangMax.Load())
	}
	cancel()
	close(release)
	<-done
}

func TestSchedulerApply(t *testing.T) {
	var built atomic.Int32
	factory := func(kind string, opts map[string]any) (collector.Collector, error) {
		if kind == "broken" {
			return nil, errors.New("option url is required")
		}
		built.Add(1)
		return funcCollector{kind, func(context.Context, collector.Emit) error { return nil }}, nil
	}
	s := NewScheduler(factory, func(string, collector.Point) {}, time.Now, testLog(t))
	base := map[string]CollectorConfig{"cpu": {Interval: time.Minute, Options: map[string]any{"a": 1}}}
	for _, tc := range []struct {
		name      string
		configs   map[string]CollectorConfig
		wantErr   string
		wantBuilt int32
	}{
		{"first apply builds", base, "", 1},
		{"same config keeps the instance", base, "", 1},
		{"new interval keeps the instance", map[string]CollectorConfig{"cpu": {Interval: time.Hour, Options: map[string]any{"a": 1}}}, "", 1},
		{"new options build a new one", map[string]CollectorConfig{"cpu": {Interval: time.Hour, Options: map[string]any{"a": 2}}}, "", 2},
		{"a broken collector changes nothing", map[string]CollectorConfig{"x": {Kind: "broken"}}, "collectors.x (kind broken): option url is required", 2},
		{"disabled is kept but off", map[string]CollectorConfig{"cpu": {Interval: time.Hour, Options: map[string]any{"a": 2}, Enabled: enabled(false)}}, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Apply(tc.configs)
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Apply error %v, want %q", err, tc.wantErr)
			}
			if built.Load() != tc.wantBuilt {
				t.Fatalf("built %d instances, want %d", built.Load(), tc.wantBuilt)
			}
			if st := s.Statuses(); len(st) != 1 || st[0].Name != "cpu" {
				t.Fatalf("statuses %+v", st)
			}
		})
	}
	if s.Statuses()[0].Enabled {
		t.Error("cpu still enabled after enabled: false")
	}
}

// closingCollector counts its Close calls and can hold a Collect until released.
type closingCollector struct {
	funcCollector
	closed atomic.Int32
}

func (c *closingCollector) Close() error { c.closed.Add(1); return nil }

// TestSchedulerClosesRetiredCollectors: an instance replaced by a reload, or
// left at shutdown, is closed once, and only after its Collect returned.
func TestSchedulerClosesRetiredCollectors(t *testing.T) {
	inCollect, release := make(chan struct{}, 1), make(chan struct{})
	var instances []*closingCollector
	factory := func(kind string, _ map[string]any) (collector.Collector, error) {
		c := &closingCollector{funcCollector: funcCollector{kind, func(ctx context.Context, _ collector.Emit) error {
			inCollect <- struct{}{}
			<-release // ignores ctx: the worst case
			return nil
		}}}
		instances = append(instances, c)
		return c, nil
	}
	s := NewScheduler(factory, func(string, collector.Point) {}, time.Now, testLog(t))
	opts := func(v int) map[string]CollectorConfig {
		return map[string]CollectorConfig{"db": {Interval: time.Hour, Timeout: 10 * time.Millisecond, Options: map[string]any{"v": v}}}
	}
	if err := s.Apply(opts(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, time.Second) }()
	<-inCollect // the first instance hangs past its timeout

	if err := s.Apply(opts(2)); err != nil {
		t.Fatal(err)
	}
	if n := instances[0].closed.Load(); n != 0 {
		t.Fatalf("the replaced instance was closed %d times while its Collect was still running", n)
	}
	close(release)
	eventually(t, "the replaced instance is closed", func() bool { return instances[0].closed.Load() == 1 })
	<-inCollect // the second instance ran
	cancel()
	<-done
	if instances[0].closed.Load() != 1 || instances[1].closed.Load() != 1 {
		t.Fatalf("closed %d and %d times, want once each", instances[0].closed.Load(), instances[1].closed.Load())
	}
}

// eventually polls cond for things that happen on other goroutines.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
