package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
)

// GroupTest is what a rule gives for one group right now.
type GroupTest struct {
	Group
	// Severity is the most urgent severity whose threshold the value passes;
	// empty when none does (or the group has no comparable value).
	Severity alerting.Severity
	// Passes tells, per severity with a threshold, whether the value passes it.
	Passes map[alerting.Severity]bool
}

// TestRule evaluates r at at, without state: the editor's "what would this give now".
// NoData is true when no group has a comparable value (the no-data policy applies).
func TestRule(ctx context.Context, q Querier, r *rule.Rule, at time.Time) (groups []GroupTest, noData bool, err error) {
	res, err := Evaluate(ctx, q, []Job{{Rule: r, At: at}})
	if err != nil {
		return nil, false, err
	}
	if res[0].Err != nil {
		return nil, false, res[0].Err
	}
	noData = true
	for _, g := range res[0].Groups {
		gt := GroupTest{Group: g, Passes: map[alerting.Severity]bool{}}
		if g.HasValue {
			noData = false
			for _, sev := range r.Severities() {
				gt.Passes[sev] = r.Holds(sev, g.Value)
			}
			gt.Severity, _ = r.Firing(g.Value)
		}
		groups = append(groups, gt)
	}
	slices.SortFunc(groups, func(a, b GroupTest) int {
		ka, kb := alerting.Labels(a.Tags).String(), alerting.Labels(b.Tags).String()
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return groups, noData, nil
}

// MaxBacktestEvaluations bounds the evaluations of one backtest; a longer range is
// evaluated at a coarser step.
const MaxBacktestEvaluations = 2000

// BacktestChange is one state change a backtest found.
type BacktestChange struct {
	At       time.Time
	Labels   alerting.Labels
	Severity alerting.Severity
	From, To alerting.State
	Value    float64
	HasValue bool
}

// BacktestPeriod is one span during which an alert would have been firing; To is
// zero when it was still firing at the end of the range.
type BacktestPeriod struct {
	Labels   alerting.Labels
	Severity alerting.Severity
	From, To time.Time
}

// Backtest is when a rule would have fired over a past range.
type Backtest struct {
	Step        time.Duration
	Evaluations int
	Changes     []BacktestChange
	Firing      []BacktestPeriod
}

// RunBacktest evaluates r at every step over [from, to), the step being the rule's
// interval (or coarser, so that there are at most MaxBacktestEvaluations), and runs
// the state machine over the results, honouring for and the no-data policy as the
// engine does.
func RunBacktest(ctx context.Context, q Querier, r *rule.Rule, from, to time.Time) (Backtest, error) {
	if !from.Before(to) {
		return Backtest{}, fmt.Errorf("backtest range: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	step := r.Interval.D()
	if n := to.Sub(from) / step; n > MaxBacktestEvaluations {
		step = (to.Sub(from) + MaxBacktestEvaluations - 1) / MaxBacktestEvaluations
		step = step.Truncate(time.Second) + time.Second
	}
	var jobs []Job
	for at := from; at.Before(to); at = at.Add(step) {
		jobs = append(jobs, Job{Rule: r, At: at})
	}
	results, err := Evaluate(ctx, q, jobs)
	if err != nil {
		return Backtest{}, err
	}
	bt := Backtest{Step: step, Evaluations: len(jobs)}
	state := map[string]store.AlertInstance{}
	open := map[string]int{} // fingerprint -> index in bt.Firing
	for i, j := range jobs {
		if results[i].Err != nil {
			return Backtest{}, results[i].Err
		}
		instances, changes := Step(r, state, results[i].Groups, j.At)
		byFP := make(map[string]store.AlertInstance, len(instances))
		for _, in := range instances {
			byFP[in.Fingerprint] = in
			state[in.Fingerprint] = in
		}
		for _, ch := range changes {
			in := byFP[ch.Fingerprint]
			bt.Changes = append(bt.Changes, BacktestChange{At: j.At, Labels: in.Labels, Severity: in.Severity,
				From: ch.From, To: in.State, Value: in.Value, HasValue: in.HasValue})
			if in.State == alerting.StateFiring {
				open[ch.Fingerprint] = len(bt.Firing)
				bt.Firing = append(bt.Firing, BacktestPeriod{Labels: in.Labels, Severity: in.Severity, From: j.At})
			} else if k, ok := open[ch.Fingerprint]; ok {
				bt.Firing[k].To = j.At
				delete(open, ch.Fingerprint)
			}
		}
	}
	return bt, nil
}
