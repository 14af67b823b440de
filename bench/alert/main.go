// Command alert benchmarks the alert engine's evaluation round: N rules, each on
// its own series (threshold on a 1m average, 15s interval), all due at once, on a
// fresh database. It times the rounds of one engine and, as the baseline from the
// same run, one bulk query that reads the same data (every series' 1m average in
// one statement). A last round, not in the figure, has every rule fire at once
// (a storm of 2 alerts per rule). Then it measures notifications/s through the
// webhook channel (notify.go). Its last line is machine-readable:
//
//	RESULT eval_round_s=<n> notifications_per_s=<n>
//
// (eval_round_s: the median steady-state round — leases renewed, every rule
// evaluated, results and state changes committed).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/expr"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

type options struct {
	notify   notifyOptions
	rules    int
	step     time.Duration
	span     time.Duration
	rounds   int
	interval time.Duration
	firing   int // every firing-th series is above the threshold
	keep     bool
}

func main() {
	var o options
	flag.IntVar(&o.rules, "rules", 10_000, "rules, each on its own series")
	flag.DurationVar(&o.step, "resolution", 15*time.Second, "time between points of one series")
	flag.DurationVar(&o.span, "span", 10*time.Minute, "data written before the first round")
	flag.IntVar(&o.rounds, "rounds", 5, "evaluation rounds timed after the first")
	flag.DurationVar(&o.interval, "interval", 15*time.Second, "rule interval (the clock advances by it each round)")
	flag.IntVar(&o.firing, "firing-every", 100, "every n-th series is above its threshold (alerts fire)")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark databases")
	flag.IntVar(&o.notify.groups, "groups", 5000, "aggregation groups of the notification run (one firing alert each), so as many notifications")
	flag.IntVar(&o.notify.concurrency, "concurrency", 8, "groups flushed at once, and concurrent senders of the notification baseline")
	flag.StringVar(&o.notify.cpuProfile, "cpuprofile", "", "write a CPU profile of the dispatcher's round to this file")
	flag.Parse()
	o.notify.keep = o.keep
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	db, err := storetest.Create(ctx, "bench_alert")
	if err != nil {
		return err
	}
	if !o.keep {
		defer db.Drop(context.Background())
	}
	if err := storetest.Migrate(ctx, db.URL); err != nil {
		return err
	}
	st, err := store.Open(ctx, db.URL)
	if err != nil {
		return err
	}
	defer st.Close()

	start := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	// After the timed rounds, a storm round: from a minute before it every series
	// is at 99, so every rule's critical and warning alerts fire at once.
	stormAt := start.Add(time.Duration(o.rounds)*o.interval + 2*time.Minute)
	points, err := load(ctx, st, o, start.Add(-o.span), stormAt, stormAt.Add(-time.Minute))
	if err != nil {
		return err
	}
	if err := createRules(ctx, st, o, start); err != nil {
		return err
	}
	if _, err := st.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	fmt.Printf("dataset: %d series, %d points (%s before the first round at %s); %d rules (interval %s, every %d-th series firing)\n\n",
		o.rules, points, o.span, o.step, o.rules, o.interval, o.firing)

	now := start
	eng := engine.New(st, slog.New(slog.DiscardHandler), engine.Options{ID: "bench", Now: func() time.Time { return now }})
	fmt.Printf("%-34s %10s %10s %8s %8s   %s\n", "round", "seconds", "evaluated", "failed", "events", "leases / query / state / commit")
	var steady []float64
	for round := 0; round <= o.rounds; round++ {
		t := time.Now()
		rep, err := eng.Tick(ctx)
		if err != nil {
			return err
		}
		secs := time.Since(t).Seconds()
		name := "steady round"
		if round == 0 {
			name = "first round (take 10k leases, load)"
		} else {
			steady = append(steady, secs)
		}
		fmt.Printf("%-34s %10.3f %10d %8d %8d   %.3f / %.3f / %.3f / %.3f\n", name, secs, rep.Evaluated, rep.Failed, len(rep.Events),
			rep.Balance.Seconds(), rep.Query.Seconds(), rep.Step.Seconds(), rep.Commit.Seconds())
		if rep.Evaluated != o.rules {
			return fmt.Errorf("round %d evaluated %d rules, want %d", round, rep.Evaluated, o.rules)
		}
		if round == 1 {
			// The ticks between rounds (every second) only check the leases.
			now = now.Add(o.interval / 2)
			t := time.Now()
			idle, err := eng.Tick(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("%-34s %10.3f %10d %8d %8d   %.3f / - / - / -\n", "tick between rounds (leases only)",
				time.Since(t).Seconds(), idle.Evaluated, idle.Failed, len(idle.Events), idle.Balance.Seconds())
			now = now.Add(-o.interval / 2)
		}
		now = now.Add(o.interval)
	}
	now = stormAt
	t := time.Now()
	storm, err := eng.Tick(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-34s %10.3f %10d %8d %8d   %.3f / %.3f / %.3f / %.3f\n", "storm round (every rule fires)", time.Since(t).Seconds(),
		storm.Evaluated, storm.Failed, len(storm.Events), storm.Balance.Seconds(), storm.Query.Seconds(), storm.Step.Seconds(), storm.Commit.Seconds())
	base, err := baseline(ctx, st, start.Add(time.Duration(o.rounds)*o.interval))
	if err != nil {
		return err
	}
	slices.Sort(steady)
	median := steady[len(steady)/2]
	fmt.Printf("\n%-34s %10.3f\n", "steady round, median", median)
	fmt.Printf("%-34s %10.3f   (one statement: every series' 1m average)\n", "baseline: bulk query, same data", base)
	fmt.Printf("%-34s %10.1fx\n", "round / baseline", median/base)
	fmt.Printf("%-34s %10.2f%%  (of the %s interval; target round < 5s)\n\n", "round / interval", 100*median/o.interval.Seconds(), o.interval)
	rate, err := runNotify(ctx, o.notify)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	fmt.Printf("RESULT eval_round_s=%.3f notifications_per_s=%.0f\n", median, rate)
	return nil
}

// load writes one point per step for every series over [from, to), at 99 from
// hot on.
func load(ctx context.Context, st *store.Store, o options, from, to, hot time.Time) (int, error) {
	refs := make([]store.SeriesRef, o.rules)
	for i := range refs {
		refs[i] = store.SeriesRef{Metric: "bench.cpu", Tags: map[string]string{"host": host(i), "dc": fmt.Sprintf("dc%d", i%4)}}
	}
	ids, err := st.ResolveSeries(ctx, refs)
	if err != nil {
		return 0, err
	}
	n := 0
	for t := from; t.Before(to); t = t.Add(o.step) {
		batch := make([]store.Sample, len(ids))
		for i, id := range ids {
			v := float64(i%50) + float64(t.Unix()%7)
			if o.firing > 0 && i%o.firing == 0 {
				v = 95
			}
			if !t.Before(hot) {
				v = 99
			}
			batch[i] = store.Sample{SeriesID: id, Time: t, Value: v}
		}
		if err := st.WriteSamples(ctx, batch, "bench.cpu"); err != nil {
			return 0, err
		}
		n += len(batch)
	}
	return n, nil
}

func host(i int) string { return fmt.Sprintf("h%05d", i) }

func createRules(ctx context.Context, st *store.Store, o options, now time.Time) error {
	recs := make([]store.AlertRuleRecord, o.rules)
	for i := range recs {
		r := &rule.Rule{
			Name:     "cpu " + host(i),
			Expr:     fmt.Sprintf(`avg(bench.cpu{host=%q}[1m]) by (host) > 90 critical, > 80 warning`, host(i)),
			Interval: rule.Duration(o.interval), Enabled: true,
			Annotations: map[string]string{"summary": `{{.Labels.host}} cpu {{.Value}}`},
		}
		if err := r.ApplyExpr(expr.Compile); err != nil {
			return err
		}
		r.Defaults()
		if err := r.Validate(); err != nil {
			return err
		}
		rec, err := r.Record()
		if err != nil {
			return err
		}
		recs[i] = rec
	}
	_, err := st.ImportAlertRules(ctx, recs, now, false)
	return err
}

func baseline(ctx context.Context, st *store.Store, at time.Time) (float64, error) {
	t := time.Now()
	rows, err := st.Pool().Query(ctx, `
		SELECT s.tags->>'host', avg(x.value) FROM samples x JOIN series s ON s.id = x.series_id
		WHERE s.metric = $1 AND x.time >= $2 AND x.time < $3 GROUP BY 1`, "bench.cpu", at.Add(-time.Minute), at)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return time.Since(t).Seconds(), nil
}
