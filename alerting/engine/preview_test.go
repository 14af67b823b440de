package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/rule"
)

func TestRuleTestAndBacktest(t *testing.T) {
	f := newFixture(t)
	// db-1 is at 95 from 60s to 180s, at 10 otherwise; db-2 always at 85.
	for s := 0; s < 300; s += 5 {
		at := t0.Add(time.Duration(s) * time.Second)
		v := 10.0
		if s >= 60 && s < 180 {
			v = 95
		}
		f.point("cpu", "db-1", at, v)
		f.point("cpu", "db-2", at, 85)
	}
	r := f.rule("cpu", `last(cpu{}[1m]) by (host) > 90 critical, > 80 warning for 30s`, 15*time.Second, rule.NoDataOK)

	groups, noData, err := engine.TestRule(context.Background(), f.st, r, t0.Add(100*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if noData || len(groups) != 2 {
		t.Fatalf("groups %+v noData %v", groups, noData)
	}
	if g := groups[0]; g.Tags["host"] != "db-1" || g.Value != 95 || g.Severity != alerting.SeverityCritical ||
		!g.Passes[alerting.SeverityCritical] || !g.Passes[alerting.SeverityWarning] {
		t.Errorf("db-1 = %+v, want 95 passing critical and warning", g)
	}
	if g := groups[1]; g.Tags["host"] != "db-2" || g.Severity != alerting.SeverityWarning || g.Passes[alerting.SeverityCritical] {
		t.Errorf("db-2 = %+v, want warning only", g)
	}

	bt, err := engine.RunBacktest(context.Background(), f.st, r, t0, t0.Add(300*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if bt.Step != 15*time.Second || bt.Evaluations != 20 {
		t.Errorf("step %s evaluations %d, want 15s and 20", bt.Step, bt.Evaluations)
	}
	var critical []engine.BacktestPeriod
	for _, p := range bt.Firing {
		if p.Severity == alerting.SeverityCritical {
			critical = append(critical, p)
		}
	}
	// Evaluations at 0, 15, ... read [at-1m, at): the 95 at 60s is first seen at
	// 75s (pending), fires 30s later at 105s, and the evaluation at 195s sees 10.
	if len(critical) != 1 || critical[0].Labels["host"] != "db-1" ||
		!critical[0].From.Equal(t0.Add(105*time.Second)) || !critical[0].To.Equal(t0.Add(195*time.Second)) {
		t.Fatalf("critical firing %+v, want db-1 from 105s to 195s", critical)
	}
	if len(bt.Firing) != 3 {
		t.Errorf("firing periods %+v, want db-1 critical and warning, db-2 warning", bt.Firing)
	}
	// A long range is evaluated at a coarser step.
	long, err := engine.RunBacktest(context.Background(), f.st, r, t0.Add(-30*24*time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	if long.Evaluations > engine.MaxBacktestEvaluations || long.Step <= 15*time.Second {
		t.Errorf("30 days: %d evaluations at %s", long.Evaluations, long.Step)
	}
}
