package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/rule"
)

// Rules that differ only in one tag's value are read with one merged query; each
// must get what it would get alone.
func TestMergedQueriesAnswerAsAlone(t *testing.T) {
	f := newFixture(t)
	var jobs []engine.Job
	for i := range 12 {
		host := fmt.Sprintf("h%d", i)
		for s := 1; s <= 3; s++ {
			f.point("m", host, t0.Add(-time.Duration(s)*10*time.Second), float64(i*10+s))
		}
		src := fmt.Sprintf(`avg(m{host=%q}[1m]) > 0`, host)
		if i%2 == 1 {
			src = fmt.Sprintf(`max(m{host=%q}[1m]) by (host) > 0`, host)
		}
		jobs = append(jobs, engine.Job{Rule: f.rule(host, src, time.Minute, rule.NoDataOK), At: t0})
	}
	// A rule on a host without data, among them.
	jobs = append(jobs, engine.Job{Rule: f.rule("none", `avg(m{host="nope"}[1m]) > 0`, time.Minute, rule.NoDataOK), At: t0})
	together, err := engine.Evaluate(context.Background(), f.st, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		alone, err := engine.Evaluate(context.Background(), f.st, []engine.Job{j})
		if err != nil {
			t.Fatal(err)
		}
		got, want := together[i], alone[0]
		if got.Err != nil || want.Err != nil {
			t.Fatalf("rule %s: errors %v / %v", j.Rule.Name, got.Err, want.Err)
		}
		if fmt.Sprint(got.Groups) != fmt.Sprint(want.Groups) {
			t.Errorf("rule %s: merged %v, alone %v", j.Rule.Name, got.Groups, want.Groups)
		}
	}
	if len(together[0].Groups) != 1 || together[0].Groups[0].Value != 2 || len(together[0].Groups[0].Tags) != 0 {
		t.Errorf("h0 without group by: %+v, want one group with avg 2 and no tags", together[0].Groups)
	}
	if g := together[1].Groups; len(g) != 1 || g[0].Tags["host"] != "h1" || g[0].Value != 13 {
		t.Errorf("h1 by host: %+v, want host h1 max 13", g)
	}
	if len(together[12].Groups) != 0 {
		t.Errorf("host without data: %+v, want no group", together[12].Groups)
	}
}
