package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/amas-eye/amas/collector/script"
	"github.com/amas-eye/amas/ingest"
)

// scriptMetricPrefix is the metric prefix of the benchmark script's lines.
const scriptMetricPrefix = "bench.script."

// scriptResult is the throughput of script lines through a real agent.
type scriptResult struct {
	lines       int
	took        time.Duration // from the agent's start to the last line received
	agentCPU    time.Duration // CPU time the agent used meanwhile
	parseOnly   float64       // lines/s of script.ParseLine alone (baseline)
	linesPerSec float64
}

// writeLines writes n tcollector lines of 20 metrics, 100 shards and 7 kinds
// (1,400 series), one second apart per 1,000 lines.
func writeLines(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Now().Add(-24 * time.Hour).Unix()
	for i := range n {
		fmt.Fprintf(w, "%sm%d %d %d.5 shard=s%d kind=k%d\n", scriptMetricPrefix, i%20, base+int64(i/1000), i, i%100, i%7)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseBaseline is how many lines per second script.ParseLine alone reads.
func parseBaseline(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	start := time.Now()
	for _, l := range lines {
		if _, err := script.ParseLine(string(l), ingest.DefaultLimits); err != nil {
			return 0, fmt.Errorf("baseline: line %q: %w", l, err)
		}
	}
	return float64(len(lines)) / time.Since(start).Seconds(), nil
}

// benchScript runs an agent whose only collector is a script printing the
// lines file once (interval 3600 s, so it runs once), and times the lines from
// the agent's start to their arrival at the receiver: the whole pipeline of
// reading the script's stdout, parsing, tagging, batching, gzip, the fsynced
// spool and /api/put.
func benchScript(bin, dir string, n int) (scriptResult, error) {
	res := scriptResult{lines: n}
	lines := filepath.Join(dir, "lines.txt")
	if err := writeLines(lines, n); err != nil {
		return res, fmt.Errorf("write the script's lines: %w", err)
	}
	var err error
	if res.parseOnly, err = parseBaseline(lines); err != nil {
		return res, err
	}
	scripts := filepath.Join(dir, "collectors", "3600")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return res, err
	}
	body := fmt.Sprintf("#!/bin/sh\nexec cat %q\n", lines)
	if err := os.WriteFile(filepath.Join(scripts, "bench_lines.sh"), []byte(body), 0o755); err != nil {
		return res, err
	}
	rcv := newReceiver(benchToken, scriptMetricPrefix)
	defer rcv.Close()
	reached, at := rcv.watch(int64(n))
	config := fmt.Sprintf(`hostname: bench-script
collectors_dir: %q
management:
  listen: ""
shipping:
  flush_interval: 100ms # the last partial batch leaves at once
collectors: {}
`, filepath.Join(dir, "collectors"))
	start := time.Now()
	p, err := startAgent(bin, dir, "script", config, rcv)
	if err != nil {
		return res, err
	}
	defer p.stop()
	select {
	case <-reached:
	case <-p.done:
		return res, p.check()
	case <-time.After(10 * time.Minute):
		return res, fmt.Errorf("after 10 minutes the receiver has %d of the script's %d lines", rcv.matched.Load(), n)
	}
	res.took = at().Sub(start)
	if res.agentCPU, err = cpuTime(p.pid()); err != nil {
		return res, err
	}
	if got := rcv.matched.Load(); got != int64(n) {
		return res, fmt.Errorf("the receiver got %d script points, want exactly %d", got, n)
	}
	res.linesPerSec = float64(n) / res.took.Seconds()
	return res, p.stop()
}
