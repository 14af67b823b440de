package resolvers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/graph/model"
	"github.com/amas-eye/amas/resolvers/scalar"
)

func TestRuleInputFieldByField(t *testing.T) {
	kind, red, cmp, nd := model.RuleKindChange, model.RuleReducerSum, model.RuleCompareOutside, model.RuleNoDataNodata
	zero := model.RuleZeroBaseInfinite
	window, interval, forD := 5*time.Minute, 30*time.Second, 2*time.Minute
	high := 50.0
	in := model.AlertRuleInput{
		Name: "orders", Kind: &kind, Reducer: &red, Compare: &cmp, NoData: &nd,
		Window: &window, Interval: &interval, For: &forD,
		Query: &model.RuleQueryInput{Metric: "shop.orders", GroupBy: []string{"region"},
			Matchers: []model.RuleMatcherInput{{Key: "env", Op: "!=", Value: "test"}}},
		Change:     &model.RuleChangeInput{Offset: 24 * time.Hour, Mode: model.RuleChangeModePctDecrease, Zero: &zero},
		Thresholds: []model.RuleThresholdInput{{Severity: model.AlertSeverityCritical, Value: -50, High: &high}},
		Labels:     []model.TagInput{{Key: "team", Value: "shop"}},
	}
	r, err := ruleIn(in, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := rule.Rule{Name: "orders", Kind: rule.KindChange, Reducer: rule.ReduceSum, Compare: rule.OpOutside,
		NoData: rule.NoDataState, Owner: "alice", Enabled: true}
	if r.Name != want.Name || r.Kind != want.Kind || r.Reducer != want.Reducer || r.Compare != want.Compare ||
		r.NoData != want.NoData || r.Owner != "alice" || !r.Enabled || r.Change.Mode != rule.ChangePctDecrease ||
		r.Change.Zero != rule.ZeroInfinite || r.Thresholds[alerting.SeverityCritical] != (rule.Threshold{Value: -50, High: 50}) ||
		r.Query.Matchers[0].Op != "!=" || r.Labels["team"] != "shop" || r.For.D() != forD {
		t.Fatalf("rule %+v", r)
	}
	rec, err := r.Record()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ruleOut(rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind != kind || *out.Reducer != red || *out.Compare != cmp || out.NoData != nd || out.Change.Zero != zero ||
		*out.Thresholds[0].High != 50 || out.Expr != nil || out.Query.Matchers[0].Value != "test" {
		t.Errorf("ruleOut %+v", out)
	}

	for _, tc := range []struct {
		name string
		in   model.AlertRuleInput
		want string
	}{
		{"expr and fields", model.AlertRuleInput{Name: "x", Expr: refTo("avg(m[5m]) > 1"), Kind: &kind}, "kind: is set by expr"},
		{"no condition", model.AlertRuleInput{Name: "x"}, "kind: \"\" is not one of"},
		{"severity twice", model.AlertRuleInput{Name: "x", Thresholds: []model.RuleThresholdInput{
			{Severity: model.AlertSeverityInfo, Value: 1}, {Severity: model.AlertSeverityInfo, Value: 2}}}, "info is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ruleIn(tc.in, "")
			var ie *scalar.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want an input error containing %q", err, tc.want)
			}
		})
	}
}

func refTo[T any](v T) *T { return &v }
