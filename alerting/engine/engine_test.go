package engine_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/expr"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is the injected time; tests move it, nothing sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	t   *testing.T
	st  *store.Store
	clk *clock
}

func newFixture(t *testing.T) *fixture {
	st, _ := storetest.Migrated(t)
	return &fixture{t: t, st: st, clk: &clock{t: t0}}
}

func (f *fixture) engine(id string) *engine.Engine {
	return engine.New(f.st, slog.New(slog.DiscardHandler), engine.Options{ID: id, Tick: time.Second, Now: f.clk.Now})
}

// point writes one sample of metric{host=host} at t.
func (f *fixture) point(metric, host string, at time.Time, v float64) {
	f.t.Helper()
	ctx := context.Background()
	ids, err := f.st.ResolveSeries(ctx, []store.SeriesRef{{Metric: metric, Tags: map[string]string{"host": host}}})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.WriteSamples(ctx, []store.Sample{{SeriesID: ids[0], Time: at, Value: v}}, metric); err != nil {
		f.t.Fatal(err)
	}
}

// rule stores a rule compiled from src with the given settings.
func (f *fixture) rule(name, src string, interval time.Duration, noData rule.NoDataPolicy) *rule.Rule {
	f.t.Helper()
	r := &rule.Rule{Name: name, Expr: src, Interval: rule.Duration(interval), NoData: noData, Enabled: true,
		Annotations: map[string]string{"summary": `{{.Labels.host}} is at {{.Value}}`}}
	if err := r.ApplyExpr(expr.Compile); err != nil {
		f.t.Fatal(err)
	}
	r.Defaults()
	if err := r.Validate(); err != nil {
		f.t.Fatal(err)
	}
	rec, err := r.Record()
	if err != nil {
		f.t.Fatal(err)
	}
	saved, err := f.st.CreateAlertRule(context.Background(), rec, t0)
	if err != nil {
		f.t.Fatal(err)
	}
	r.ID = saved.ID
	return r
}

// tick moves the clock to at and ticks e.
func (f *fixture) tick(e *engine.Engine, at time.Time) engine.TickReport {
	f.t.Helper()
	f.clk.Set(at)
	rep, err := e.Tick(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// states is the stored state of every instance of rule id, by its host label
// ("" for the rule-level instance) and severity.
func (f *fixture) states(id int64) map[string]alerting.State {
	f.t.Helper()
	byRule, err := f.st.AlertInstancesOfRules(context.Background(), []int64{id})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]alerting.State{}
	for _, in := range byRule[id] {
		out[in.Labels["host"]+"/"+string(in.Severity)] = in.State
	}
	return out
}

func (f *fixture) history(id int64) []store.AlertHistoryEntry {
	f.t.Helper()
	h, err := f.st.AlertHistory(context.Background(), store.HistoryFilter{RuleID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	// Oldest first.
	for i, j := 0, len(h)-1; i < j; i, j = i+1, j-1 {
		h[i], h[j] = h[j], h[i]
	}
	return h
}

func transitions(h []store.AlertHistoryEntry) []string {
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = e.Labels["host"] + ":" + string(e.From) + "->" + string(e.To)
	}
	return out
}

func wantStates(t *testing.T, got map[string]alerting.State, want map[string]alerting.State) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("states %v, want %v", got, want)
		}
	}
}

func wantTransitions(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	}
}

func TestPendingForFiringResolved(t *testing.T) {
	f := newFixture(t)
	r := f.rule("cpu", `max(os.cpu{}[1m]) by (host) > 90 critical, > 70 warning for 30s`, 15*time.Second, rule.NoDataOK)
	e := f.engine("a")
	step := 15 * time.Second

	f.point("os.cpu", "db-1", t0.Add(-10*time.Second), 95)
	f.point("os.cpu", "db-2", t0.Add(-10*time.Second), 75)
	f.point("os.cpu", "db-3", t0.Add(-10*time.Second), 10)
	rep := f.tick(e, t0)
	if rep.Evaluated != 1 || rep.Held != 1 {
		t.Fatalf("first tick %+v, want the rule held and evaluated", rep)
	}
	wantStates(t, f.states(r.ID), map[string]alerting.State{
		"db-1/critical": alerting.StatePending, "db-1/warning": alerting.StatePending, "db-2/warning": alerting.StatePending,
	})
	// Not due yet: nothing is evaluated between intervals.
	if rep := f.tick(e, t0.Add(5*time.Second)); rep.Evaluated != 0 {
		t.Fatalf("tick before the interval evaluated %d rules", rep.Evaluated)
	}
	f.tick(e, t0.Add(step))
	wantStates(t, f.states(r.ID), map[string]alerting.State{
		"db-1/critical": alerting.StatePending, "db-1/warning": alerting.StatePending, "db-2/warning": alerting.StatePending,
	})
	rep = f.tick(e, t0.Add(2*step)) // 30s: for has elapsed
	if len(rep.Events) != 3 {
		t.Fatalf("events at 30s %+v, want 3 firing", rep.Events)
	}
	wantStates(t, f.states(r.ID), map[string]alerting.State{
		"db-1/critical": alerting.StateFiring, "db-1/warning": alerting.StateFiring, "db-2/warning": alerting.StateFiring,
	})
	active, err := f.st.ActiveAlerts(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 3 {
		t.Fatalf("ActiveAlerts = %d, want 3", len(active))
	}
	for _, a := range active {
		if a.Labels["host"] == "db-1" && a.Severity == alerting.SeverityCritical &&
			(a.Value != 95 || a.Threshold != 90 || a.Annotations["summary"] != "db-1 is at 95" || !a.StartsAt.Equal(t0.Add(2*step))) {
			t.Errorf("db-1 critical = %+v", a)
		}
	}
	// db-1 calms down to 80: critical resolves, warning keeps firing.
	f.point("os.cpu", "db-1", t0.Add(90*time.Second), 80)
	f.tick(e, t0.Add(105*time.Second)) // the 95 has left the 1m window
	wantStates(t, f.states(r.ID), map[string]alerting.State{
		"db-1/critical": alerting.StateResolved, "db-1/warning": alerting.StateFiring, "db-2/warning": alerting.StateResolved,
	})
	h := f.history(r.ID)
	for _, e := range h {
		if e.Labels["host"] == "db-1" && e.Severity == alerting.SeverityCritical && e.To == alerting.StateResolved &&
			(e.Value != 80 || e.Threshold != 90) {
			t.Errorf("resolution recorded with value %g threshold %g, want 80 and 90", e.Value, e.Threshold)
		}
	}
	if len(h) != 8 {
		t.Errorf("history %v, want 3 pending, 3 firing, 2 resolved", transitions(h))
	}
}

func TestFlappingNeverFires(t *testing.T) {
	f := newFixture(t)
	r := f.rule("flap", `last(q.depth{}[1m]) by (host) > 100 critical for 1m`, 10*time.Second, rule.NoDataOK)
	e := f.engine("a")
	at := t0
	for _, v := range []float64{150, 20, 150, 20, 150} {
		f.point("q.depth", "mq-1", at.Add(-time.Second), v)
		f.tick(e, at)
		at = at.Add(10 * time.Second)
	}
	wantTransitions(t, transitions(f.history(r.ID)),
		"mq-1:inactive->pending", "mq-1:pending->inactive", "mq-1:inactive->pending", "mq-1:pending->inactive", "mq-1:inactive->pending")
	// Holding from 40s on: it fires once it has held for 1m, at 100s.
	for ; !at.After(t0.Add(100 * time.Second)); at = at.Add(10 * time.Second) {
		f.point("q.depth", "mq-1", at.Add(-time.Second), 150)
		f.tick(e, at)
	}
	h := transitions(f.history(r.ID))
	if h[len(h)-1] != "mq-1:pending->firing" || len(h) != 6 {
		t.Fatalf("transitions %v, want firing last", h)
	}
	if last := f.history(r.ID)[5]; !last.At.Equal(t0.Add(100 * time.Second)) {
		t.Errorf("fired at %s, want %s (1m after the condition began to hold at 40s)", last.At, t0.Add(100*time.Second))
	}
}

func TestNoDataPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy rule.NoDataPolicy
		want   map[string]alerting.State // after two evaluations without data
		trans  []string
	}{
		{rule.NoDataOK, map[string]alerting.State{}, nil},
		{rule.NoDataAlerting, map[string]alerting.State{"/critical": alerting.StateFiring},
			[]string{":inactive->pending", ":pending->firing"}},
		{rule.NoDataState, map[string]alerting.State{"/critical": alerting.StateNoData}, []string{":inactive->nodata"}},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			f := newFixture(t)
			r := f.rule("quiet", `last(agent.up{}[1m]) by (host) < 1 critical for 10s`, 10*time.Second, tc.policy)
			e := f.engine("a")
			f.tick(e, t0)
			f.tick(e, t0.Add(10*time.Second))
			wantStates(t, f.states(r.ID), tc.want)
			wantTransitions(t, transitions(f.history(r.ID)), tc.trans...)
			// Data comes back and all is well: the rule-level alert resolves.
			f.point("agent.up", "web-1", t0.Add(15*time.Second), 1)
			f.tick(e, t0.Add(20*time.Second))
			for k, st := range f.states(r.ID) {
				if st != alerting.StateResolved {
					t.Errorf("%s = %s after data came back, want resolved", k, st)
				}
			}
		})
	}
}

func TestStaleGroupIsNoData(t *testing.T) {
	f := newFixture(t)
	r := f.rule("heartbeat", `last(agent.up{}[30s]) by (host) < 1 critical`, 10*time.Second, rule.NoDataState)
	e := f.engine("a")
	f.point("agent.up", "web-1", t0.Add(-time.Second), 0)
	f.tick(e, t0)
	wantStates(t, f.states(r.ID), map[string]alerting.State{"web-1/critical": alerting.StateFiring})
	// No newer point: at 40s the newest is older than the 30s staleness limit.
	f.tick(e, t0.Add(40*time.Second))
	wantStates(t, f.states(r.ID), map[string]alerting.State{"web-1/critical": alerting.StateNoData})
	f.point("agent.up", "web-1", t0.Add(45*time.Second), 1)
	f.tick(e, t0.Add(50*time.Second))
	wantTransitions(t, transitions(f.history(r.ID)),
		"web-1:inactive->firing", "web-1:firing->nodata", "web-1:nodata->resolved")
}

func TestRestartContinuesWithoutReannouncing(t *testing.T) {
	f := newFixture(t)
	r := f.rule("disk", `avg(disk.used{}[1m]) by (host) > 90 critical for 20s`, 10*time.Second, rule.NoDataOK)
	for s := -50; s <= 60; s += 5 {
		f.point("disk.used", "db-1", t0.Add(time.Duration(s)*time.Second), 95)
	}
	first := f.engine("a")
	f.tick(first, t0)                     // pending
	f.tick(first, t0.Add(10*time.Second)) // still pending
	// The process restarts: a new engine with a new replica id, same database.
	// It waits for the old lease to run out, then continues the for timer.
	second := f.engine("b")
	if rep := f.tick(second, t0.Add(15*time.Second)); rep.Held != 0 {
		t.Fatalf("new engine took a lease still held: %+v", rep)
	}
	rep := f.tick(second, t0.Add(21*time.Second))
	if rep.Held != 1 || rep.Evaluated != 1 || len(rep.Events) != 1 || rep.Events[0].State != alerting.StateFiring {
		t.Fatalf("after takeover %+v, want the rule evaluated and firing (pending since 0s, for 20s)", rep)
	}
	// A third start, this time after a clean stop of the second: no event again.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	third := f.engine("c")
	rep = f.tick(third, t0.Add(31*time.Second))
	if rep.Evaluated != 1 || len(rep.Events) != 0 {
		t.Fatalf("after a clean restart %+v, want an evaluation and no event (still firing)", rep)
	}
	wantTransitions(t, transitions(f.history(r.ID)), "db-1:inactive->pending", "db-1:pending->firing")
}

func TestTwoEnginesFailover(t *testing.T) {
	f := newFixture(t)
	const rules = 12
	interval := 10 * time.Second
	ids := map[int64]bool{}
	for i := range rules {
		r := f.rule("r"+string(rune('a'+i)), `max(load{}[1m]) by (host) > 1000`, interval, rule.NoDataOK)
		ids[r.ID] = true
	}
	f.point("load", "h", t0.Add(-time.Second), 1)
	a, b := f.engine("a"), f.engine("b")

	// Both tick at the same instants, concurrently. Every rule is evaluated exactly
	// once per interval, by one of them.
	evaluations := map[int64]int{}
	at := t0
	for round := 0; round < 6; round++ {
		f.clk.Set(at)
		var wg sync.WaitGroup
		reps := make([]engine.TickReport, 2)
		for i, e := range []*engine.Engine{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep, err := e.Tick(context.Background())
				if err != nil {
					t.Error(err)
				}
				reps[i] = rep
			}()
		}
		wg.Wait()
		for _, rep := range reps {
			for _, id := range rep.Written {
				evaluations[id]++
			}
		}
		at = at.Add(interval / 2)
	}
	// Rounds at 0, 5, ..., 25s: due at 0, 10, 20 → three evaluations of each rule.
	for id := range ids {
		if evaluations[id] != 3 {
			t.Errorf("rule %d evaluated %d times in 30s, want 3 (once per interval)", id, evaluations[id])
		}
	}
	repA, _ := a.Tick(context.Background())
	repB, _ := b.Tick(context.Background())
	if repA.Held+repB.Held != rules || repA.Held == 0 || repB.Held == 0 {
		t.Fatalf("held a=%d b=%d, want the %d rules shared", repA.Held, repB.Held, rules)
	}

	// a dies (it stops ticking, without giving its leases back). Within two
	// intervals b evaluates every rule.
	died := at
	firstEval := map[int64]time.Time{}
	for ; at.Before(died.Add(2 * interval)); at = at.Add(time.Second) {
		rep := f.tick(b, at)
		for _, id := range rep.Written {
			if firstEval[id].IsZero() {
				firstEval[id] = at
			}
		}
	}
	for id := range ids {
		if firstEval[id].IsZero() {
			t.Errorf("rule %d not evaluated within two intervals of a's death", id)
		}
	}
	if rep := f.tick(b, at); rep.Held != rules {
		t.Errorf("b holds %d rules, want all %d", rep.Held, rules)
	}
	// a comes back from a pause: its leases are gone, it writes nothing.
	f.clk.Set(at.Add(time.Second))
	rep, err := a.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Written) != 0 {
		t.Errorf("a, back from the dead, wrote %v", rep.Written)
	}
}

func TestFailingRuleRecordsItsError(t *testing.T) {
	f := newFixture(t)
	bad := f.rule("bad", `avg(m{host=~"db-(?<x>1)"}[1m]) > 1`, 10*time.Second, rule.NoDataOK)
	good := f.rule("good", `avg(m[1m]) > 1`, 10*time.Second, rule.NoDataOK)
	f.point("m", "db-1", t0.Add(-time.Second), 5)
	reg := prometheus.NewRegistry()
	e := engine.New(f.st, slog.New(slog.DiscardHandler), engine.Options{ID: "a", Now: f.clk.Now, Registerer: reg})
	rep := f.tick(e, t0)
	if rep.Evaluated != 2 || rep.Failed != 1 || len(rep.Events) != 1 {
		t.Fatalf("tick %+v, want both evaluated, bad failed, good firing", rep)
	}
	for name, want := range map[string]float64{
		"amas_alert_evaluations_total": 2, "amas_alert_evaluation_failures_total": 1,
		"amas_alert_state_changes_total": 1, "amas_alert_rules_held": 2, "amas_alert_tick_errors_total": 0,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	health, err := f.st.AlertRuleHealth(context.Background(), []int64{bad.ID, good.ID})
	if err != nil {
		t.Fatal(err)
	}
	if h := health[bad.ID]; h.Owner != "a" || !h.LastEvalAt.Equal(t0) || h.LastError == "" {
		t.Errorf("bad rule health %+v, want its error recorded", h)
	}
	if h := health[good.ID]; h.LastError != "" || !h.NextEvalAt.Equal(t0.Add(10*time.Second)) {
		t.Errorf("good rule health %+v", h)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestClosedAlertsExpire(t *testing.T) {
	f := newFixture(t)
	r := f.rule("spike", `max(m[1m]) > 10`, 10*time.Second, rule.NoDataOK)
	e := engine.New(f.st, slog.New(slog.DiscardHandler), engine.Options{ID: "a", Now: f.clk.Now,
		ClosedRetention: time.Hour, CleanupEvery: 10 * time.Minute})
	f.point("m", "h", t0.Add(-time.Second), 50)
	f.tick(e, t0)                     // firing
	f.tick(e, t0.Add(90*time.Second)) // resolved: the 50 left the window
	wantStates(t, f.states(r.ID), map[string]alerting.State{"/warning": alerting.StateResolved})
	f.tick(e, t0.Add(50*time.Minute))
	wantStates(t, f.states(r.ID), map[string]alerting.State{"/warning": alerting.StateResolved})
	f.tick(e, t0.Add(time.Hour+2*time.Minute)) // past the retention of the resolution at 90s
	wantStates(t, f.states(r.ID), map[string]alerting.State{})
	if h := f.history(r.ID); len(h) != 2 {
		t.Errorf("history %v, want it kept", transitions(h))
	}
	// The group fires again later: a fresh instance.
	f.point("m", "h", t0.Add(2*time.Hour-time.Second), 60)
	f.tick(e, t0.Add(2*time.Hour))
	wantStates(t, f.states(r.ID), map[string]alerting.State{"/warning": alerting.StateFiring})
}

// An edit that drops a severity or changes the labels resolves the alerts that are
// no longer the rule's, whatever its no-data policy.
func TestEditedRuleResolvesOrphans(t *testing.T) {
	f := newFixture(t)
	r := f.rule("cpu", `max(cpu[1m]) by (host) > 90 critical, > 80 warning`, 10*time.Second, rule.NoDataAlerting)
	e := f.engine("a")
	f.point("cpu", "db-1", t0.Add(-time.Second), 95)
	f.tick(e, t0)
	wantStates(t, f.states(r.ID), map[string]alerting.State{"db-1/critical": alerting.StateFiring, "db-1/warning": alerting.StateFiring})

	edited := &rule.Rule{Name: "cpu", Expr: `max(cpu[1m]) by (host) > 90 critical`, Interval: r.Interval, NoData: r.NoData,
		Enabled: true, Labels: map[string]string{"team": "db"}}
	if err := edited.ApplyExpr(expr.Compile); err != nil {
		t.Fatal(err)
	}
	edited.Defaults()
	edited.ID = r.ID
	rec, err := edited.Record()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.UpdateAlertRule(context.Background(), rec, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	f.point("cpu", "db-1", t0.Add(9*time.Second), 95)
	f.tick(e, t0.Add(10*time.Second))
	got := map[string]alerting.State{}
	byRule, _ := f.st.AlertInstancesOfRules(context.Background(), []int64{r.ID})
	for _, in := range byRule[r.ID] {
		got[in.Labels["team"]+"/"+string(in.Severity)] = in.State
	}
	wantStates(t, got, map[string]alerting.State{
		"/critical": alerting.StateResolved, "/warning": alerting.StateResolved, "db/critical": alerting.StateFiring,
	})
}
