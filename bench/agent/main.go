// Command agent is the `amas agent` benchmark. It builds the amas binary and
// runs real agent processes against local receivers standing in for amas
// serve, reading their CPU time and resident memory from /proc/<pid>/stat and
// /proc/<pid>/status:
//
//   - an agent with every OS collector (os, alive) at a 10 s interval, next to
//     an agent with no collector at all (the cost of the agent itself) and the
//     in-process cost of one os collection (the cost of reading /proc and /sys);
//   - the throughput of script lines through the whole pipeline (stdout,
//     parsing, batching, gzip, fsynced spool, /api/put), next to the line
//     parser alone.
//
// Its last line is machine-readable:
//
//	RESULT agent_cpu_pct=<n> agent_rss_mb=<n> script_lines_per_s=<n>
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/osstat"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	interval    time.Duration
	lines       int
	baselineRun int
	binary      string
}

// Targets of issue 3.
const (
	targetCPUPct = 1.0
	targetRSSMiB = 40.0
)

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "how long the agents' CPU and memory are measured")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "time left to the agents to start before the measurement")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "interval of the OS collectors")
	flag.IntVar(&o.lines, "lines", 1_000_000, "lines the script collector prints for the throughput figure")
	flag.IntVar(&o.baselineRun, "baseline-collections", 200, "in-process os collections timed for the /proc baseline")
	flag.StringVar(&o.binary, "binary", "", "amas binary to measure; default: build ./cmd/amas as make build does")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "amas-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.binary
	if bin == "" {
		if bin, err = buildAgent(ctx, dir); err != nil {
			return err
		}
	}

	perCollect, osPoints, err := osBaseline(o.baselineRun)
	if err != nil {
		return err
	}
	sr, err := benchScript(bin, dir, o.lines)
	if err != nil {
		return fmt.Errorf("script throughput: %w", err)
	}
	full, idle, err := benchResources(bin, dir, o)
	if err != nil {
		return fmt.Errorf("agent resources: %w", err)
	}

	baselinePct := 100 * perCollect.Seconds() / o.interval.Seconds()
	fmt.Printf("agent process: all OS collectors (os, alive) every %s, measured over %s after a %s warm-up\n", o.interval, o.duration, o.warmup)
	fmt.Printf("%-52s %12s %12s %12s %12s\n", "", "CPU % core", "RSS MiB max", "VmHWM MiB", "points/s")
	fmt.Printf("%-52s %12.3f %12.1f %12.1f %12.1f\n", "amas agent, all OS collectors", full.cpuPct, full.maxRSS/mib, full.peak/mib, full.pointsPerSec)
	fmt.Printf("%-52s %12.3f %12.1f %12.1f %12.1f\n", "amas agent, no collectors (baseline: the agent alone)", idle.cpuPct, idle.maxRSS/mib, idle.peak/mib, idle.pointsPerSec)
	fmt.Printf("%-52s %12.3f %12s %12s %12.1f\n",
		fmt.Sprintf("os collection in-process (baseline: %.2f ms each)", float64(perCollect.Microseconds())/1000),
		baselinePct, "-", "-", float64(osPoints)/o.interval.Seconds())
	fmt.Printf("%-52s %12s %12s\n\n", "target", fmt.Sprintf("< %.0f", targetCPUPct), fmt.Sprintf("< %.0f", targetRSSMiB))

	fmt.Printf("script lines: a 3600/ script printing %d lines through the agent to /api/put\n", sr.lines)
	fmt.Printf("%-52s %14s %16s\n", "", "lines/s", "agent CPU s/1M")
	fmt.Printf("%-52s %14.0f %16.2f\n", "amas agent, script -> parse -> spool -> /api/put", sr.linesPerSec, sr.agentCPU.Seconds()*1e6/float64(sr.lines))
	fmt.Printf("%-52s %14.0f %16s\n\n", "script.ParseLine alone (baseline)", sr.parseOnly, "-")

	fmt.Printf("RESULT agent_cpu_pct=%.3f agent_rss_mb=%.1f script_lines_per_s=%.0f\n", full.cpuPct, full.maxRSS/mib, sr.linesPerSec)
	return nil
}

// osBaseline is the CPU time of one collection of the os collector in this
// process, with the points thrown away: what reading and parsing /proc and
// /sys costs, before any agent machinery.
func osBaseline(runs int) (time.Duration, int, error) {
	c, err := osstat.New(osstat.DefaultConfig())
	if err != nil {
		return 0, 0, err
	}
	points := 0
	count := func(collector.Point) { points++ }
	// The first collection has no previous counters, so it makes no rates.
	if err := c.Collect(context.Background(), count); err != nil {
		return 0, 0, fmt.Errorf("os baseline: %w", err)
	}
	before, err := selfCPU()
	if err != nil {
		return 0, 0, err
	}
	points = 0
	for range runs {
		if err := c.Collect(context.Background(), count); err != nil {
			return 0, 0, fmt.Errorf("os baseline: %w", err)
		}
	}
	after, err := selfCPU()
	if err != nil {
		return 0, 0, err
	}
	return (after - before) / time.Duration(runs), points / runs, nil
}

// usage is what one agent process cost over the measurement.
type usage struct {
	cpuPct       float64 // of one core
	maxRSS       float64 // bytes, largest VmRSS sampled each second
	peak         float64 // bytes, VmHWM at the end
	pointsPerSec float64 // received over the whole run
}

// benchResources runs the agent with every OS collector and one with no
// collector side by side, and measures both over the same window.
func benchResources(bin, dir string, o options) (full, idle usage, err error) {
	fullRcv := newReceiver(benchToken, "proc.stat.cpu")
	defer fullRcv.Close()
	idleRcv := newReceiver(benchToken, "amas.agent.")
	defer idleRcv.Close()
	fullCfg := fmt.Sprintf(`hostname: bench-full
management:
  listen: 127.0.0.1:0
collectors:
  os:
    interval: %s
  alive:
    interval: %s
`, o.interval, o.interval)
	idleCfg := "hostname: bench-idle\nmanagement:\n  listen: 127.0.0.1:0\ncollectors: {}\n"

	start := time.Now()
	fp, err := startAgent(bin, dir, "full", fullCfg, fullRcv)
	if err != nil {
		return full, idle, err
	}
	defer fp.stop()
	ip, err := startAgent(bin, dir, "idle", idleCfg, idleRcv)
	if err != nil {
		return full, idle, err
	}
	defer ip.stop()

	time.Sleep(o.warmup)
	procs := []*agentProcess{fp, ip}
	use := []*usage{&full, &idle}
	cpu0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		if cpu0[i], err = cpuTime(p.pid()); err != nil {
			return full, idle, fmt.Errorf("%s agent: %w", p.name, err)
		}
	}
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(t0) < o.duration {
		<-tick.C
		for i, p := range procs {
			if err := p.check(); err != nil {
				return full, idle, err
			}
			m, err := readMemory(p.pid())
			if err != nil {
				return full, idle, fmt.Errorf("%s agent: %w", p.name, err)
			}
			use[i].maxRSS = max(use[i].maxRSS, float64(m.rss))
		}
	}
	window := time.Since(t0)
	for i, p := range procs {
		cpu1, err := cpuTime(p.pid())
		if err != nil {
			return full, idle, fmt.Errorf("%s agent: %w", p.name, err)
		}
		m, err := readMemory(p.pid())
		if err != nil {
			return full, idle, fmt.Errorf("%s agent: %w", p.name, err)
		}
		use[i].cpuPct = 100 * (cpu1 - cpu0[i]).Seconds() / window.Seconds()
		use[i].peak = float64(m.peak)
	}
	elapsed := time.Since(start).Seconds()
	full.pointsPerSec = float64(fullRcv.points.Load()) / elapsed
	idle.pointsPerSec = float64(idleRcv.points.Load()) / elapsed
	if fullRcv.matched.Load() == 0 {
		return full, idle, fmt.Errorf("the OS agent shipped no proc.stat.cpu point in %s", time.Since(start).Round(time.Second))
	}
	if err := fp.stop(); err != nil {
		return full, idle, err
	}
	return full, idle, ip.stop()
}
