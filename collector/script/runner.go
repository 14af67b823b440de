package script

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/ingest"
)

// Options configure a Runner.
type Options struct {
	Dir            string        // holds the <interval>/ sub-directories
	RescanInterval time.Duration // how often Dir is re-read
	KillGrace      time.Duration // from SIGTERM to SIGKILL
	MinBackoff     time.Duration // first pause before a crashed 0/ script restarts
	MaxBackoff     time.Duration // longest such pause
	OnceTimeout    time.Duration // how long RunOnce lets a 0/ script run
	Limits         ingest.Limits
}

// healthyRun is how long a 0/ script must have run for its next crash to
// restart the back-off from MinBackoff.
const healthyRun = time.Minute

// Run describes one finished execution, for the agent's health points.
type Run struct {
	Name         string
	At           time.Time
	Up           bool
	Took         time.Duration
	Errors       int64 // failed runs so far
	InvalidLines int64 // refused lines so far
}

// Status is what the agent shows of one script.
type Status struct {
	Name            string
	Path            string
	IntervalSeconds int // 0 = long-running
	Enabled         bool
	State           string // running, waiting, stopped (exit 13), backing off
	Up              bool
	LastError       string
	LastRun         time.Time
	LastDuration    time.Duration
	Errors          int64
	InvalidLines    int64
	Restarts        int64
}

// Runner runs every script of a collectors directory and follows the directory
// as scripts are added, changed or removed.
type Runner struct {
	opts   Options
	emit   func(name string, p collector.Point)
	report func(Run)
	log    *slog.Logger

	mu       sync.Mutex
	scripts  map[string]*script // by name (the file name)
	disabled map[string]bool    // by name, until the agent restarts
	warned   map[string]bool    // paths already reported as duplicates
	wg       sync.WaitGroup
}

type script struct {
	name     string
	path     string
	interval int // seconds; 0 = long-running
	modTime  time.Time
	stop     context.CancelFunc

	mu     sync.Mutex
	status Status
}

// NewRunner returns a Runner that hands each valid line's point to emit and
// each finished run to report.
func NewRunner(opts Options, emit func(name string, p collector.Point), report func(Run), log *slog.Logger) *Runner {
	return &Runner{
		opts: opts, emit: emit, report: report, log: log,
		scripts: map[string]*script{}, disabled: map[string]bool{}, warned: map[string]bool{},
	}
}

// Run runs the scripts until ctx ends, then waits for them to be killed.
func (r *Runner) Run(ctx context.Context) {
	defer r.wg.Wait()
	t := time.NewTicker(r.opts.RescanInterval)
	defer t.Stop()
	for {
		r.rescan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// found is a script file as the directory shows it now.
type found struct {
	path     string
	interval int
	modTime  time.Time
}

// scan lists the executable files of the numeric sub-directories. Like
// tcollector, other directories (e.g. a parking place for disabled scripts),
// hidden files and non-executables are ignored.
func (r *Runner) scan() (map[string]found, error) {
	dirs, err := os.ReadDir(r.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("collectors dir %s: %w", r.opts.Dir, err)
	}
	out := map[string]found{}
	for _, d := range dirs {
		interval, err := strconv.Atoi(d.Name())
		if err != nil || interval < 0 || !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(r.opts.Dir, d.Name()))
		if err != nil {
			r.log.Warn("read collectors sub-directory", "dir", d.Name(), "err", err)
			continue
		}
		for _, f := range files {
			r.addFound(out, filepath.Join(r.opts.Dir, d.Name(), f.Name()), interval, f)
		}
	}
	return out, nil
}

func (r *Runner) addFound(out map[string]found, path string, interval int, f fs.DirEntry) {
	info, err := f.Info()
	if err != nil || strings.HasPrefix(f.Name(), ".") || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return
	}
	if prev, dup := out[f.Name()]; dup {
		if !r.warned[path] {
			r.warned[path] = true
			r.log.Warn("two script collectors with the same name; the second is ignored", "collector", f.Name(), "running", prev.path, "ignored", path)
		}
		return
	}
	out[f.Name()] = found{path: path, interval: interval, modTime: info.ModTime()}
}

// rescan starts new scripts, stops removed ones and restarts changed ones.
func (r *Runner) rescan(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now, err := r.scan()
	if err != nil {
		r.log.Warn("scan script collectors", "err", err)
		return
	}
	for name, sc := range r.scripts {
		f, ok := now[name]
		if ok && f.path == sc.path && f.interval == sc.interval && f.modTime.Equal(sc.modTime) {
			continue
		}
		r.log.Info("script collector removed or changed; stopping it", "collector", name, "path", sc.path)
		sc.stop()
		delete(r.scripts, name)
	}
	for name, f := range sortedFound(now) {
		if _, running := r.scripts[name]; running || r.disabled[name] {
			continue
		}
		r.start(ctx, name, f)
	}
}

func sortedFound(m map[string]found) func(yield func(string, found) bool) {
	return func(yield func(string, found) bool) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !yield(n, m[n]) {
				return
			}
		}
	}
}

func (r *Runner) start(ctx context.Context, name string, f found) {
	sctx, cancel := context.WithCancel(ctx)
	sc := &script{name: name, path: f.path, interval: f.interval, modTime: f.modTime, stop: cancel}
	sc.status = Status{Name: name, Path: f.path, IntervalSeconds: f.interval, Enabled: true, State: "waiting"}
	r.scripts[name] = sc
	r.log.Info("script collector started", "collector", name, "path", f.path, "interval", f.interval)
	r.wg.Go(func() {
		if f.interval == 0 {
			r.superviseLongRunning(sctx, sc)
		} else {
			r.superviseInterval(sctx, sc)
		}
	})
}

// superviseInterval runs the script every interval; a run still going when the
// next is due is killed.
func (r *Runner) superviseInterval(ctx context.Context, sc *script) {
	every := time.Duration(sc.interval) * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		res := r.runScript(ctx, sc, every)
		if ctx.Err() != nil || res.exitCode == ExitDoNotRespawn {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// superviseLongRunning keeps a 0/ script running, restarting it with an
// exponential back-off when it exits.
func (r *Runner) superviseLongRunning(ctx context.Context, sc *script) {
	backoff := r.opts.MinBackoff
	for {
		res := r.runScript(ctx, sc, 0)
		if ctx.Err() != nil || res.exitCode == ExitDoNotRespawn {
			return
		}
		if res.took >= healthyRun {
			backoff = r.opts.MinBackoff
		}
		r.log.Warn("long-running script collector exited; restarting", "collector", sc.name, "err", res.err, "restart_in", backoff)
		sc.update(func(st *Status) { st.State = "backing off"; st.Restarts++ })
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, r.opts.MaxBackoff)
	}
}

// runScript runs the script once and records the outcome.
func (r *Runner) runScript(ctx context.Context, sc *script, limit time.Duration) runResult {
	start := time.Now()
	sc.update(func(st *Status) { st.State = "running"; st.Up = true })
	res := run(ctx, sc.path, limit, r.opts.KillGrace, r.onStdout(sc), r.onStderr(sc))
	if ctx.Err() != nil && !res.timedOut {
		return res // stopped by the agent, not the script's fault
	}
	stopped := res.exitCode == ExitDoNotRespawn // a choice of the script, not a failure
	failed := res.err != nil && !stopped
	var rep Run
	sc.update(func(st *Status) {
		st.State, st.Up, st.LastRun, st.LastDuration, st.LastError = "waiting", !failed && !stopped, start, res.took, ""
		if failed {
			st.Errors++
			st.LastError = res.err.Error()
		}
		if stopped {
			st.State = "stopped (exit 13)"
		}
		rep = Run{Name: sc.name, At: start, Up: st.Up, Took: res.took, Errors: st.Errors, InvalidLines: st.InvalidLines}
	})
	r.logOutcome(sc, res)
	r.report(rep)
	return res
}

func (r *Runner) logOutcome(sc *script, res runResult) {
	switch {
	case res.exitCode == ExitDoNotRespawn:
		r.log.Info("script collector asked not to be run again (exit 13)", "collector", sc.name)
	case res.timedOut:
		r.log.Warn("script collector ran past its interval and was killed", "collector", sc.name, "err", res.err)
	case res.err != nil:
		r.log.Warn("script collector failed", "collector", sc.name, "err", res.err)
	}
}

func (r *Runner) onStdout(sc *script) func(string) {
	return func(line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		p, err := ParseLine(line, r.opts.Limits)
		if err != nil {
			sc.update(func(st *Status) { st.InvalidLines++ })
			r.log.Warn("script collector printed an invalid line; not shipped", "collector", sc.name, "line", truncate(line, 200), "err", err)
			return
		}
		r.emit(sc.name, p)
	}
}

func (r *Runner) onStderr(sc *script) func(string) {
	return func(line string) {
		r.log.Warn("script collector stderr", "collector", sc.name, "line", truncate(line, 1000))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (sc *script) update(f func(*Status)) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	f(&sc.status)
}

func (sc *script) snapshot() Status {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.status
}

// Statuses lists the scripts by name, disabled ones included.
func (r *Runner) Statuses() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.scripts)+len(r.disabled))
	for _, sc := range r.scripts {
		out = append(out, sc.snapshot())
	}
	for name := range r.disabled {
		out = append(out, Status{Name: name, State: "disabled"})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// ErrUnknownScript is returned for a name that is not a script collector.
var ErrUnknownScript = errors.New("no such script collector")

// SetEnabled stops (and kills) or restores a script until the agent restarts.
// Enabling takes effect at the next rescan.
func (r *Runner) SetEnabled(name string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc, running := r.scripts[name]
	switch {
	case on && r.disabled[name]:
		delete(r.disabled, name)
	case !on && running:
		sc.stop()
		delete(r.scripts, name)
		r.disabled[name] = true
	case !running && !r.disabled[name]:
		return fmt.Errorf("%w: %q", ErrUnknownScript, name)
	}
	return nil
}

// RunOnce runs every script once, concurrently: interval scripts until they
// exit (at most their interval), long-running ones for OnceTimeout (--once).
func (r *Runner) RunOnce(ctx context.Context) error {
	r.mu.Lock()
	files, err := r.scan()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for name, f := range files {
		sc := &script{name: name, path: f.path, interval: f.interval}
		limit := time.Duration(f.interval) * time.Second
		if f.interval == 0 {
			limit = r.opts.OnceTimeout
		}
		wg.Go(func() {
			res := run(ctx, sc.path, limit, r.opts.KillGrace, r.onStdout(sc), r.onStderr(sc))
			asked := res.exitCode == ExitDoNotRespawn || (f.interval == 0 && res.timedOut)
			if res.err != nil && !asked {
				r.log.Warn("script collector failed", "collector", name, "err", res.err)
			}
		})
	}
	wg.Wait()
	return nil
}
