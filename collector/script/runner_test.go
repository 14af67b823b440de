package script

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// harness runs a Runner over a temporary collectors directory and exposes
// what it emits and reports as channels.
type harness struct {
	t       *testing.T
	dir     string
	runner  *Runner
	points  chan collector.Point
	reports chan Run
	cancel  context.CancelFunc
	done    chan struct{}
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), points: make(chan collector.Point, 10000), reports: make(chan Run, 10000)}
	opts := Options{
		Dir: h.dir, RescanInterval: 50 * time.Millisecond, KillGrace: 200 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, OnceTimeout: time.Second,
		Limits: ingest.DefaultLimits,
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	h.runner = NewRunner(opts, func(_ string, p collector.Point) { h.points <- p }, func(r Run) { h.reports <- r }, log)
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); h.runner.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// write puts an executable script at <dir>/<interval>/<name>.
func (h *harness) write(interval int, name, body string) string {
	h.t.Helper()
	dir := filepath.Join(h.dir, strconv.Itoa(interval))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	// Write then rename, so the runner never executes a half-written file.
	tmp := filepath.Join(h.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		h.t.Fatal(err)
	}
	return path
}

func (h *harness) nextPoint() collector.Point {
	h.t.Helper()
	select {
	case p := <-h.points:
		return p
	case <-time.After(10 * time.Second):
		h.t.Fatal("no point emitted")
		return collector.Point{}
	}
}

func (h *harness) nextReport(name string) Run {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-h.reports:
			if r.Name == name {
				return r
			}
		case <-deadline:
			h.t.Fatalf("no run reported for %s", name)
		}
	}
}

// eventually polls cond: the runner reacts to the file system, which has no
// clock to inject.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) status(name string) (Status, bool) {
	for _, s := range h.runner.Statuses() {
		if s.Name == name {
			return s, true
		}
	}
	return Status{}, false
}

func TestIntervalScriptRunsEveryInterval(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write(1, "every.sh", "#!/bin/sh\necho \"test.interval $(date +%s) 42 kind=shell\"\n")
	h.start()
	first, second := h.nextPoint(), h.nextPoint()
	if first.Metric != "test.interval" || first.Value != 42 || first.Tags["kind"] != "shell" {
		t.Fatalf("point %+v", first)
	}
	if r := h.nextReport("every.sh"); !r.Up {
		t.Fatalf("run reported down: %+v", r)
	}
	_ = second // a second point proves the script ran again
}

func TestLongRunningPythonScript(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write(0, "stream.py", `#!/usr/bin/env python3
import sys, time
i = 0
while True:
    print("test.stream %d %d lang=python" % (time.time(), i))
    sys.stdout.flush()
    i += 1
    time.sleep(0.02)
`)
	h.start()
	for want := 0.0; want < 3; want++ {
		if p := h.nextPoint(); p.Metric != "test.stream" || p.Value != want || p.Tags["lang"] != "python" {
			t.Fatalf("point %+v, want value %v", p, want)
		}
	}
	if st, _ := h.status("stream.py"); st.State != "running" || st.Restarts != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestCrashedLongRunningScriptRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write(0, "crash.sh", "#!/bin/sh\necho \"test.crash $(date +%s) 1\"\nexit 3\n")
	h.start()
	var starts []time.Time
	for range 4 {
		r := h.nextReport("crash.sh")
		if r.Up {
			t.Fatalf("a crash reported up: %+v", r)
		}
		starts = append(starts, r.At)
	}
	// Back-off 20, 40, 80, 80 ms: the last gap is at least the first pause doubled.
	if gap := starts[3].Sub(starts[2]); gap < 80*time.Millisecond {
		t.Errorf("restart gap %s: back-off did not grow to 80ms", gap)
	}
	st, _ := h.status("crash.sh")
	if st.Restarts < 3 || !strings.Contains(st.LastError, "exit status 3") {
		t.Errorf("status %+v", st)
	}
}

func TestBadLinesAreCountedNotShipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write(0, "mixed.sh", `#!/bin/sh
now=$(date +%s)
echo "test.good $now 1"
echo "garbage"
echo "test.bad $now notanumber"
echo "test.bad $now 1 notatag"
echo "test.bad 1600000000x 1"
echo "test.bad $now NaN"
echo "bad metric! $now 1"
echo "some debug text on stderr" >&2
echo "test.good $now 2 k=v"
exit 13
`)
	h.start()
	r := h.nextReport("mixed.sh")
	if r.InvalidLines != 6 {
		t.Errorf("invalid lines %d, want 6", r.InvalidLines)
	}
	for _, want := range []float64{1, 2} {
		if p := h.nextPoint(); p.Metric != "test.good" || p.Value != want {
			t.Fatalf("point %+v, want test.good %v", p, want)
		}
	}
	select {
	case p := <-h.points:
		t.Fatalf("a bad line was shipped: %+v", p)
	default:
	}
}

func TestHungScriptIsKilledWithItsChildren(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// Ignores SIGTERM and leaves a child holding stdout: only a SIGKILL of the
	// whole process group ends it.
	h.write(1, "hang.sh", `#!/bin/sh
trap '' TERM
sleep 60 &
echo $! > `+pidFile+`
echo "test.hang $(date +%s) 1"
wait
`)
	h.start()
	r := h.nextReport("hang.sh")
	if r.Up {
		t.Fatalf("hung run reported up: %+v", r)
	}
	st, _ := h.status("hang.sh")
	if !strings.Contains(st.LastError, "still running after 1s: killed") {
		t.Errorf("last error %q", st.LastError)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	eventually(t, "the child to be reaped", func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
	})
}

// isZombie: a killed child re-parented to a non-reaping init stays a zombie.
func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] == "Z"
}

func TestExit13IsNotRespawned(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runs := filepath.Join(t.TempDir(), "runs")
	h.write(0, "once.sh", "#!/bin/sh\necho run >> "+runs+"\nexit 13\n")
	h.write(1, "clock.sh", "#!/bin/sh\necho \"test.clock $(date +%s) 1\"\n")
	h.start()
	if r := h.nextReport("once.sh"); r.Up || r.Errors != 0 {
		t.Fatalf("exit 13 reported as %+v: want down without an error", r)
	}
	// Two runs of the 1 s script leave time for many 20 ms back-offs and rescans.
	h.nextReport("clock.sh")
	h.nextReport("clock.sh")
	data, _ := os.ReadFile(runs)
	if n := strings.Count(string(data), "run"); n != 1 {
		t.Fatalf("exit-13 script ran %d times", n)
	}
	if st, _ := h.status("once.sh"); st.State != "stopped (exit 13)" {
		t.Fatalf("state %q", st.State)
	}
}

func TestRescanPicksUpAddedChangedAndRemovedScripts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if err := os.MkdirAll(filepath.Join(h.dir, "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.start()
	loop := func(metric string) string {
		return "#!/bin/sh\nwhile true; do echo \"" + metric + " $(date +%s) 1\"; sleep 0.05; done\n"
	}
	path := h.write(0, "added.sh", loop("test.v1"))
	if p := h.nextPoint(); p.Metric != "test.v1" {
		t.Fatalf("added script: %+v", p)
	}
	h.write(0, "added.sh", loop("test.v2"))
	future := time.Now().Add(time.Minute) // the mtime must differ even on coarse clocks
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	for p := h.nextPoint(); p.Metric != "test.v2"; p = h.nextPoint() {
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed script to be forgotten", func() bool { _, ok := h.status("added.sh"); return !ok })
}

func TestSetEnabled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write(0, "loop.sh", "#!/bin/sh\nwhile true; do echo \"test.loop $(date +%s) 1\"; sleep 0.05; done\n")
	h.start()
	h.nextPoint()
	if err := h.runner.SetEnabled("loop.sh", false); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.status("loop.sh"); st.State != "disabled" {
		t.Fatalf("state %q after disable", st.State)
	}
	if err := h.runner.SetEnabled("nope", false); !errors.Is(err, ErrUnknownScript) {
		t.Fatalf("unknown script: %v", err)
	}
	if err := h.runner.SetEnabled("loop.sh", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the script to run again", func() bool { st, _ := h.status("loop.sh"); return st.State == "running" })
}

func TestRunOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write(60, "a.sh", "#!/bin/sh\necho \"test.a $(date +%s) 1\"\n")
	h.write(0, "b.sh", "#!/bin/sh\nwhile true; do echo \"test.b $(date +%s) 2\"; sleep 5; done\n")
	start := time.Now()
	if err := h.runner.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(h.points) > 0 {
		got[(<-h.points).Metric] = true
	}
	if !got["test.a"] || !got["test.b"] {
		t.Fatalf("points from %v, want test.a and test.b", got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("RunOnce took %s: the long-running script was not cut at OnceTimeout", took)
	}
}
