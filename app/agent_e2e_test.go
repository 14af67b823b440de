package app_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/agent"
	"github.com/amas-eye/amas/collector/builtin/registry"
	"github.com/amas-eye/amas/config"
)

// e2eSeqShards are the series of the counting collector: e2e.seq{shard=s0..s4}.
const e2eSeqShards = 5

// countingCollector is a built-in collector whose every point is known: run r
// emits e2e.seq = r at base+r seconds for each shard. Both agents of the test
// share it, as two runs of an agent on one host read the same counters.
type countingCollector struct {
	base time.Time

	mu   sync.Mutex
	runs int
}

func (c *countingCollector) Name() string { return "e2e_seq" }

func (c *countingCollector) Collect(_ context.Context, emit collector.Emit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := c.base.Add(time.Duration(c.runs) * time.Second)
	for shard := range e2eSeqShards {
		emit(collector.Point{Metric: "e2e.seq", Time: at, Value: float64(c.runs), Tags: map[string]string{"shard": fmt.Sprintf("s%d", shard)}})
	}
	c.runs++
	return nil
}

func (c *countingCollector) emittedRuns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs
}

// restartServer starts `amas serve` again on the stopped server's database and
// HTTP address, as an operator restarting it would.
func restartServer(t *testing.T, old *server) *server {
	t.Helper()
	var cfg config.Server
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Flags(fs)
	args := []string{"--database-url", old.dbURL, "--http-addr", old.HTTPAddr(), "--put-addr", "127.0.0.1:0",
		"--otlp-grpc-addr", "", "--otlp-http-addr", "", "--roles", "api,ingest,rollup"}
	if err := config.Parse(fs, args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &server{App: a, url: old.url, viewerToken: old.viewerToken, dbURL: old.dbURL}
}

// e2eAgent is one agent process of the test, run in-process.
type e2eAgent struct {
	*agent.Agent
	stop func()
}

func startE2EAgent(t *testing.T, cfg agent.Config, seq *countingCollector) *e2eAgent {
	t.Helper()
	factory := func(kind string, options map[string]any) (collector.Collector, error) {
		if kind == "e2e_seq" {
			return seq, nil
		}
		return registry.Build(kind, options)
	}
	a, err := agent.New(cfg, agent.Deps{Factory: factory, Version: "e2e", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &e2eAgent{Agent: a, stop: stop}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentExactlyOnceAcrossServerRestart runs a real agent (a counting
// collector, the OS and alive collectors, and a shell script collector) against
// a real server, stops the server mid-run, restarts the agent while the server
// is down, then restarts the server. Every point the collector made is in the
// database exactly once, and every family is queryable through GraphQL under
// its name with the host, global and own tags.
func TestAgentExactlyOnceAcrossServerRestart(t *testing.T) {
	s := startServer(t)
	db, err := pgxConnect(t, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	seqSamples := func() int {
		var n int
		err := db.QueryRow(t.Context(), `SELECT count(*) FROM samples s JOIN series se ON se.id = s.series_id WHERE se.metric = 'e2e.seq'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	scripts := filepath.Join(t.TempDir(), "collectors")
	if err := os.MkdirAll(filepath.Join(scripts, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"e2e.script.value $(date +%s) 42 lang=sh\"\n"
	if err := os.WriteFile(filepath.Join(scripts, "1", "e2e_script.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.Server, cfg.Token, cfg.Hostname = s.url, s.Bootstrap.IngestToken, "e2e-restart"
	cfg.Tags = map[string]string{"env": "e2e"}
	cfg.CollectorsDir = scripts
	cfg.Spool.Dir = t.TempDir()
	cfg.Management.Listen = ""
	cfg.Heartbeat.Interval = time.Second
	cfg.Shipping.FlushInterval = 100 * time.Millisecond
	cfg.Shipping.Timeout = 5 * time.Second
	cfg.Shipping.MaxBackoff = 300 * time.Millisecond
	cfg.Collectors = map[string]agent.CollectorConfig{
		"e2e_seq": {Interval: 50 * time.Millisecond},
		"alive":   {Interval: time.Second},
		"os":      {Interval: time.Second},
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	seq := &countingCollector{base: time.Now().UTC().Truncate(time.Second).Add(-30 * time.Minute)}

	first := startE2EAgent(t, cfg, seq)
	waitFor(t, "e2e.seq points stored while the server is up", 20*time.Second, func() bool { return seqSamples() >= 50 })

	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	atStop := seq.emittedRuns()
	waitFor(t, "points spooled while the server is down", 10*time.Second, func() bool {
		return seq.emittedRuns() >= atStop+20 && first.Status().SpoolBytes > 0
	})
	first.stop() // the agent restarts while the server is still down
	second := startE2EAgent(t, cfg, seq)
	waitFor(t, "the restarted agent collects on", 10*time.Second, func() bool { return seq.emittedRuns() >= atStop+40 })

	s2 := restartServer(t, s)
	waitFor(t, "the spool replayed after the server came back", 30*time.Second, func() bool {
		return second.Status().SpoolBytes == 0 && seqSamples() >= (atStop+60)*e2eSeqShards
	})
	second.stop() // ships what it still holds before it returns
	if st := second.Status(); st.DroppedPoints != 0 || st.RejectedPoints != 0 || st.InvalidPoints != 0 {
		t.Errorf("agent counters: %+v, want nothing dropped, rejected or invalid", st)
	}

	t.Run("every e2e.seq point stored exactly once", func(t *testing.T) {
		runs := seq.emittedRuns()
		rows, err := db.Query(t.Context(), `
			SELECT se.tags, extract(epoch FROM s.time)::bigint, count(*)
			FROM samples s JOIN series se ON se.id = s.series_id
			WHERE se.metric = 'e2e.seq' GROUP BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]int{}
		for rows.Next() {
			var tags map[string]string
			var unix int64
			var n int
			if err := rows.Scan(&tags, &unix, &n); err != nil {
				t.Fatal(err)
			}
			if tags["host"] != "e2e-restart" || tags["env"] != "e2e" || len(tags) != 3 {
				t.Fatalf("series tags %v, want host=e2e-restart env=e2e shard=...", tags)
			}
			got[fmt.Sprintf("%s@%d", tags["shard"], unix-seq.base.Unix())] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		var missing, duplicated []string
		for r := range runs {
			for shard := range e2eSeqShards {
				key := fmt.Sprintf("s%d@%d", shard, r)
				switch n := got[key]; {
				case n == 0:
					missing = append(missing, key)
				case n > 1:
					duplicated = append(duplicated, fmt.Sprintf("%s x%d", key, n))
				}
				delete(got, key)
			}
		}
		if len(missing) > 0 || len(duplicated) > 0 || len(got) > 0 {
			t.Fatalf("%d runs x %d shards: missing %d %v, duplicated %d %v, never emitted %v",
				runs, e2eSeqShards, len(missing), head(missing), len(duplicated), head(duplicated), slices.Sorted(maps.Keys(got)))
		}
		t.Logf("%d points over a server stop and restart and an agent restart, each stored once", runs*e2eSeqShards)
	})

	t.Run("queried back through GraphQL", func(t *testing.T) {
		runs := seq.emittedRuns()
		q := map[string]any{
			"metric": "e2e.seq", "filters": []map[string]any{{"key": "shard", "op": "EQ", "value": "s3"}},
			"from": seq.base.Format(time.RFC3339), "to": seq.base.Add(time.Duration(runs) * time.Second).Format(time.RFC3339), "step": "1s",
		}
		got := decodeSeries(t, s2.graphql(t, s2.viewerToken, seriesQuery, map[string]any{"q": q}))
		if len(got.Series) != 1 {
			t.Fatalf("e2e.seq{shard=s3}: %d series, want 1", len(got.Series))
		}
		if want := "env=e2e host=e2e-restart shard=s3"; tagString(got.Series[0].Tags) != want {
			t.Errorf("e2e.seq tags %s, want %s", tagString(got.Series[0].Tags), want)
		}
		pts := got.Series[0].Points
		if len(pts) != runs {
			t.Fatalf("e2e.seq{shard=s3}: %d points, want %d", len(pts), runs)
		}
		for i, p := range pts {
			if p.V != float64(i) || !p.T.Equal(seq.base.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("point %d is %v=%v, want %v=%d", i, p.T, p.V, seq.base.Add(time.Duration(i)*time.Second), i)
			}
		}

		now := time.Now().UTC()
		for _, tc := range []struct{ metric, tags string }{
			{"e2e.script.value", "env=e2e host=e2e-restart lang=sh"},
			{"sys.machine.alive", "env=e2e host=e2e-restart"},
			{"proc.loadavg.1min", "env=e2e host=e2e-restart"},
		} {
			q := map[string]any{"metric": tc.metric, "from": now.Add(-10 * time.Minute).Format(time.RFC3339), "to": now.Add(time.Minute).Format(time.RFC3339)}
			got := decodeSeries(t, s2.graphql(t, s2.viewerToken, seriesQuery, map[string]any{"q": q}))
			if len(got.Series) != 1 || tagString(got.Series[0].Tags) != tc.tags || len(got.Series[0].Points) == 0 {
				t.Errorf("%s: %+v, want one series tagged %s with points", tc.metric, got, tc.tags)
			}
		}
		r := s2.graphql(t, s2.viewerToken, `{ tagValues(metric: "amas.collector.up", key: "collector") }`, nil)
		var tv struct{ TagValues []string }
		if err := json.Unmarshal(r.Data, &tv); err != nil {
			t.Fatal(err)
		}
		if want := []string{"alive", "e2e_script.sh", "e2e_seq", "os"}; !slices.Equal(tv.TagValues, want) {
			t.Errorf("amas.collector.up collectors %v, want %v", tv.TagValues, want)
		}
	})
}

func decodeSeries(t *testing.T, r gqlResponse) seriesAnswer {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("series: %+v", r.Errors)
	}
	var a seriesAnswer
	if err := json.Unmarshal(r.Data, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func tagString(tags []struct{ Key, Value string }) string {
	var s string
	for i, kv := range tags {
		if i > 0 {
			s += " "
		}
		s += kv.Key + "=" + kv.Value
	}
	return s
}

func head(s []string) []string { return s[:min(len(s), 10)] }
