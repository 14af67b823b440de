package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amas-eye/amas/collector"
)

// Names of the health points every collector reports, tagged collector=<name>.
const (
	MetricCollectorUp       = "amas.collector.up"               // 1 when the last run succeeded
	MetricCollectorDuration = "amas.collector.duration_seconds" // of the last run
	MetricCollectorErrors   = "amas.collector.errors"           // counter of failed runs
)

// Factory builds a built-in collector of a kind from its options.
type Factory func(kind string, options map[string]any) (collector.Collector, error)

// CollectorStatus is what the management API and the heartbeat show of one
// collector.
type CollectorStatus struct {
	Name                string    `json:"name"`
	Type                string    `json:"type"` // "builtin" or "script"
	Enabled             bool      `json:"enabled"`
	IntervalSeconds     float64   `json:"intervalSeconds"`
	Up                  bool      `json:"up"`
	LastError           string    `json:"lastError,omitempty"`
	LastRun             time.Time `json:"lastRun,omitzero"`
	LastDurationSeconds float64   `json:"lastDurationSeconds"`
	Errors              int64     `json:"errors"`
	// Script collectors only.
	InvalidLines int64  `json:"invalidLines,omitempty"`
	State        string `json:"state,omitempty"`
	Path         string `json:"path,omitempty"`
}

// Scheduler runs each built-in collector on its own interval, each run bounded
// by its timeout. A collector that fails, panics or hangs only affects itself:
// a hung Collect is abandoned at its timeout (reported as an error) and the
// collector is not started again until that call returns.
type Scheduler struct {
	factory Factory
	emit    func(name string, p collector.Point)
	now     func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	ctx      context.Context // of Run; nil before it
	jobs     map[string]*job
	loops    sync.WaitGroup
	collects sync.WaitGroup // Collect calls, abandoned ones included
}

type job struct {
	name        string
	kind        string
	fingerprint string
	inst        *instance // shared with the job it replaced when only the schedule changed
	interval    time.Duration
	timeout     time.Duration
	enabled     atomic.Bool
	stop        context.CancelFunc

	mu     sync.Mutex
	status CollectorStatus
}

// NewScheduler returns a Scheduler that builds collectors with factory and hands
// their points to emit.
func NewScheduler(factory Factory, emit func(name string, p collector.Point), now func() time.Time, log *slog.Logger) *Scheduler {
	return &Scheduler{factory: factory, emit: emit, now: now, log: log, jobs: map[string]*job{}}
}

// Apply makes the configured collectors the running set. A collector whose kind
// and options did not change keeps its instance (and so its counters for
// rates); the instances no longer used are closed. If any new one cannot be
// built nothing changes.
func (s *Scheduler) Apply(configs map[string]CollectorConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*job, len(configs))
	var errs []error
	for _, name := range sortedKeys(configs) {
		j, err := s.buildJob(name, configs[name].resolved(name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[name] = j
	}
	if len(errs) > 0 {
		for _, j := range next {
			if !s.uses(j.inst) {
				j.inst.retire()
			}
		}
		return errors.Join(errs...)
	}
	kept := make(map[*instance]bool, len(next))
	for _, j := range next {
		kept[j.inst] = true
	}
	for name, old := range s.jobs {
		if n := next[name]; n != old {
			s.stopJob(old)
		}
		if !kept[old.inst] {
			old.inst.retire()
		}
	}
	for _, j := range next {
		if s.jobs[j.name] != j {
			s.startJob(j)
		}
	}
	s.jobs = next
	return nil
}

// buildJob returns the existing job when nothing that needs a restart changed,
// a job reusing the existing instance when only its schedule changed, or a job
// with a new instance.
func (s *Scheduler) buildJob(name string, cc CollectorConfig) (*job, error) {
	fp, err := fingerprint(cc)
	if err != nil {
		return nil, fmt.Errorf("collectors.%s.options: %w", name, err)
	}
	old := s.jobs[name]
	if old != nil && old.fingerprint == fp && old.interval == cc.Interval && old.timeout == cc.Timeout {
		old.enabled.Store(*cc.Enabled)
		return old, nil
	}
	j := &job{name: name, kind: cc.Kind, fingerprint: fp, interval: cc.Interval, timeout: cc.Timeout}
	j.enabled.Store(*cc.Enabled)
	j.status = CollectorStatus{Name: name, Type: "builtin"}
	if old != nil && old.fingerprint == fp {
		j.inst = old.inst
		j.status = old.snapshot()
		return j, nil
	}
	if s.factory == nil {
		return nil, fmt.Errorf("collectors.%s: built-in collectors are not available in this build", name)
	}
	c, err := s.factory(cc.Kind, cc.Options)
	if err != nil {
		return nil, fmt.Errorf("collectors.%s (kind %s): %w", name, cc.Kind, err)
	}
	j.inst = newInstance(c, s.log)
	return j, nil
}

// uses reports whether a current job runs inst.
func (s *Scheduler) uses(inst *instance) bool {
	for _, j := range s.jobs {
		if j.inst == inst {
			return true
		}
	}
	return false
}

// Close retires every collector, closing those that hold connections once
// their last Collect returned. The Scheduler runs nothing afterwards.
func (s *Scheduler) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.jobs {
		j.inst.retire()
	}
}

func fingerprint(cc CollectorConfig) (string, error) {
	b, err := json.Marshal(struct {
		Kind    string
		Options map[string]any
	}{cc.Kind, cc.Options})
	return string(b), err
}

func (s *Scheduler) startJob(j *job) {
	if s.ctx == nil {
		return // Run starts it
	}
	ctx, cancel := context.WithCancel(s.ctx)
	j.stop = cancel
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.loop(ctx, j)
	}()
}

func (s *Scheduler) stopJob(j *job) {
	if j.stop != nil {
		j.stop()
	}
}

// Run starts the collectors and runs them until ctx ends. It then waits for
// the collectors' calls to return, but at most grace: a collector that ignores
// its context cannot hold the agent's shutdown. It closes the collectors.
func (s *Scheduler) Run(ctx context.Context, grace time.Duration) {
	s.mu.Lock()
	s.ctx = ctx
	for _, j := range s.jobs {
		s.startJob(j)
	}
	s.mu.Unlock()
	defer s.Close()
	<-ctx.Done()
	s.loops.Wait()
	done := make(chan struct{})
	go func() {
		s.collects.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("collectors still running at shutdown are abandoned", "grace", grace)
	}
}

func (s *Scheduler) loop(ctx context.Context, j *job) {
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		if j.enabled.Load() {
			s.runOnce(ctx, j)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CollectOnce runs every enabled collector once, concurrently, and returns when
// all have finished or timed out (--once).
func (s *Scheduler) CollectOnce(ctx context.Context) {
	s.mu.Lock()
	jobs := make([]*job, 0, len(s.jobs))
	for _, j := range s.jobs {
		if j.enabled.Load() {
			jobs = append(jobs, j)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { s.runOnce(ctx, j) })
	}
	wg.Wait()
	s.collects.Wait()
}

func (s *Scheduler) runOnce(ctx context.Context, j *job) {
	start := s.now()
	if !j.inst.begin() {
		if ctx.Err() != nil {
			return // replaced or shutting down
		}
		s.record(j, start, 0, fmt.Errorf("skipped: the previous collection is still running after its %s timeout", j.timeout))
		return
	}
	cctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	done := make(chan error, 1)
	s.collects.Add(1)
	go func() {
		defer s.collects.Done()
		defer j.inst.end()
		done <- s.collect(cctx, j)
	}()
	var err error
	select {
	case err = <-done:
	case <-cctx.Done():
		select {
		case err = <-done: // finished just in time
		default:
			err = fmt.Errorf("timed out after %s; abandoned until it returns", j.timeout)
		}
	}
	if ctx.Err() != nil {
		return // shutting down: not the collector's fault
	}
	s.record(j, start, s.now().Sub(start), err)
}

// collect calls Collect, turning a panic into an error so that one broken
// collector cannot take the agent down.
func (s *Scheduler) collect(ctx context.Context, j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return j.inst.c.Collect(ctx, func(p collector.Point) { s.emit(j.name, p) })
}

func (s *Scheduler) record(j *job, start time.Time, took time.Duration, err error) {
	j.mu.Lock()
	st := &j.status
	st.LastRun, st.LastDurationSeconds, st.Up, st.LastError = start, took.Seconds(), err == nil, ""
	if err != nil {
		st.Errors++
		st.LastError = err.Error()
	}
	errCount := st.Errors
	j.mu.Unlock()
	if err != nil {
		s.log.Warn("collector failed", "collector", j.name, "err", err)
	}
	emitHealth(func(p collector.Point) { s.emit(j.name, p) }, j.name, start, err == nil, took, errCount)
}

// emitHealth emits the three health points of one run.
func emitHealth(emit collector.Emit, name string, at time.Time, up bool, took time.Duration, errCount int64) {
	tags := map[string]string{"collector": name}
	upValue := 0.0
	if up {
		upValue = 1
	}
	emit(collector.Point{Metric: MetricCollectorUp, Time: at, Value: upValue, Tags: tags})
	emit(collector.Point{Metric: MetricCollectorDuration, Time: at, Value: took.Seconds(), Tags: tags})
	emit(collector.Point{Metric: MetricCollectorErrors, Time: at, Value: float64(errCount), Tags: tags})
}

func (j *job) snapshot() CollectorStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.status
	st.Enabled = j.enabled.Load()
	st.IntervalSeconds = j.interval.Seconds()
	return st
}

// Statuses lists the built-in collectors by name.
func (s *Scheduler) Statuses() []CollectorStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CollectorStatus, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j.snapshot())
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// SetEnabled switches a collector on or off until the next reload; false when
// there is no such collector.
func (s *Scheduler) SetEnabled(name string, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[name]
	if ok {
		j.enabled.Store(on)
	}
	return ok
}
