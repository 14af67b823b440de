package rule_test

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/expr"
	"github.com/amas-eye/amas/alerting/rule"
)

func validRule() *rule.Rule {
	r := &rule.Rule{
		Name: "cpu", Kind: rule.KindThreshold, Query: rule.Query{Metric: "os.cpu"}, Reducer: rule.ReduceAvg,
		Window: rule.Duration(5 * time.Minute), Compare: rule.OpGT,
		Thresholds: map[alerting.Severity]rule.Threshold{alerting.SeverityCritical: {Value: 90}},
		Interval:   rule.Duration(15 * time.Second), NoData: rule.NoDataOK, Enabled: true,
	}
	return r
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *rule.Rule)
		field  string
	}{
		{"no name", func(r *rule.Rule) { r.Name = " " }, "name"},
		{"unknown kind", func(r *rule.Rule) { r.Kind = "magic" }, "kind"},
		{"interval too short", func(r *rule.Rule) { r.Interval = rule.Duration(100 * time.Millisecond) }, "interval"},
		{"no metric", func(r *rule.Rule) { r.Query.Metric = "" }, "query.metric"},
		{"bad matcher op", func(r *rule.Rule) { r.Query.Matchers = []rule.Matcher{{Key: "h", Op: "~", Value: "x"}} }, "query.matchers[0].op"},
		{"bad regex", func(r *rule.Rule) { r.Query.Matchers = []rule.Matcher{{Key: "h", Op: "=~", Value: "(x"}} }, "query.matchers[0].value"},
		{"unknown reducer", func(r *rule.Rule) { r.Reducer = "median" }, "reducer"},
		{"no window", func(r *rule.Rule) { r.Window = 0 }, "window"},
		{"unknown comparison", func(r *rule.Rule) { r.Compare = "=>" }, "compare"},
		{"no thresholds", func(r *rule.Rule) { r.Thresholds = nil }, "thresholds"},
		{"unknown severity", func(r *rule.Rule) { r.Thresholds["page"] = rule.Threshold{Value: 1} }, "thresholds.page"},
		{"reversed range", func(r *rule.Rule) {
			r.Compare = rule.OpOutside
			r.Thresholds[alerting.SeverityCritical] = rule.Threshold{Value: 10, High: 1}
		}, "thresholds.critical"},
		{"high without range", func(r *rule.Rule) { r.Thresholds[alerting.SeverityCritical] = rule.Threshold{Value: 1, High: 2} }, "thresholds.critical.high"},
		{"nan threshold", func(r *rule.Rule) { r.Thresholds[alerting.SeverityCritical] = rule.Threshold{Value: math.NaN()} }, "thresholds.critical"},
		{"unknown no-data policy", func(r *rule.Rule) { r.NoData = "ignore" }, "no_data"},
		{"reserved label", func(r *rule.Rule) { r.Labels = map[string]string{"severity": "x"} }, "labels.severity"},
		{"bad label name", func(r *rule.Rule) { r.Labels = map[string]string{"1x": "x"} }, "labels.1x"},
		{"bad template", func(r *rule.Rule) { r.Annotations = map[string]string{"summary": "{{.Value"} }, "annotations.summary"},
		{"last value without staleness", func(r *rule.Rule) { r.Kind, r.Reducer = rule.KindLastValue, "" }, "staleness"},
		{"change without change", func(r *rule.Rule) { r.Kind = rule.KindChange }, "change"},
		{"change without offset", func(r *rule.Rule) {
			r.Kind, r.Change = rule.KindChange, &rule.Change{Mode: rule.ChangeAbs, Zero: rule.ZeroNoData}
		}, "change.offset"},
		{"equal with a threshold", func(r *rule.Rule) {
			r.Kind, r.Compare = rule.KindChange, ""
			r.Change = &rule.Change{Mode: rule.ChangeEqual, Offset: rule.Duration(time.Hour), Zero: rule.ZeroNoData}
		}, "thresholds.critical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := validRule()
			tc.change(r)
			err := r.Validate()
			var ve *rule.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, rule.ErrInvalid) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			for _, f := range ve.Fields {
				if f.Field == tc.field {
					return
				}
			}
			t.Errorf("errors %v do not name %s", err, tc.field)
		})
	}
	if err := validRule().Validate(); err != nil {
		t.Errorf("valid rule: %v", err)
	}
}

func TestCompareAndSeverity(t *testing.T) {
	r := validRule()
	r.Thresholds = map[alerting.Severity]rule.Threshold{
		alerting.SeverityCritical: {Value: 90}, alerting.SeverityWarning: {Value: 70}, alerting.SeverityInfo: {Value: 50},
	}
	for _, tc := range []struct {
		v     float64
		want  alerting.Severity
		fires bool
	}{{95, alerting.SeverityCritical, true}, {90, alerting.SeverityWarning, true}, {60, alerting.SeverityInfo, true}, {50, "", false}} {
		sev, ok := r.Firing(tc.v)
		if sev != tc.want || ok != tc.fires {
			t.Errorf("Firing(%g) = %q %v, want %q %v", tc.v, sev, ok, tc.want, tc.fires)
		}
	}
	rng := rule.Threshold{Value: 10, High: 20}
	for _, tc := range []struct {
		op   rule.Op
		v    float64
		want bool
	}{
		{rule.OpOutside, 9, true}, {rule.OpOutside, 10, false}, {rule.OpOutside, 20, false}, {rule.OpOutside, 21, true},
		{rule.OpInside, 10, true}, {rule.OpInside, 20, true}, {rule.OpInside, 21, false},
		{rule.OpGE, 10, true}, {rule.OpLT, 10, false}, {rule.OpLE, 10, true}, {rule.OpEQ, 10, true}, {rule.OpNE, 10, false},
	} {
		if got := rule.Compare(tc.op, tc.v, rng); got != tc.want {
			t.Errorf("Compare(%s, %g, 10..20) = %v, want %v", tc.op, tc.v, got, tc.want)
		}
	}
}

func TestChangeValue(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mode         rule.ChangeMode
		zero         rule.ZeroBase
		cur, earlier float64
		want         float64
		ok           bool
	}{
		{"increase", rule.ChangePctIncrease, rule.ZeroNoData, 150, 100, 50, true},
		{"increase of a fall is negative", rule.ChangePctIncrease, rule.ZeroNoData, 50, 100, -50, true},
		{"decrease", rule.ChangePctDecrease, rule.ZeroNoData, 50, 100, 50, true},
		{"decrease from a negative base", rule.ChangePctDecrease, rule.ZeroNoData, -15, -10, 50, true},
		{"from zero is no data", rule.ChangePctIncrease, rule.ZeroNoData, 5, 0, 0, false},
		{"from zero up is infinite", rule.ChangePctIncrease, rule.ZeroInfinite, 5, 0, math.Inf(1), true},
		{"from zero to zero is no change", rule.ChangePctIncrease, rule.ZeroInfinite, 0, 0, 0, true},
		{"decrease from zero up is minus infinite", rule.ChangePctDecrease, rule.ZeroInfinite, 5, 0, math.Inf(-1), true},
		{"absolute", rule.ChangeAbs, rule.ZeroNoData, 7, 10, -3, true},
		{"absolute from zero", rule.ChangeAbs, rule.ZeroNoData, 7, 0, 7, true},
		{"equal", rule.ChangeEqual, rule.ZeroNoData, 3, 3, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rule.Rule{Kind: rule.KindChange, Change: &rule.Change{Mode: tc.mode, Zero: tc.zero}}
			got, ok := r.ChangeValue(tc.cur, tc.earlier)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ChangeValue(%g, %g) = %g %v, want %g %v", tc.cur, tc.earlier, got, ok, tc.want, tc.ok)
			}
		})
	}
	eq := &rule.Rule{Kind: rule.KindChange, Change: &rule.Change{Mode: rule.ChangeEqual},
		Thresholds: map[alerting.Severity]rule.Threshold{alerting.SeverityInfo: {}}}
	if !eq.Holds(alerting.SeverityInfo, 0) || eq.Holds(alerting.SeverityInfo, 1) {
		t.Error("equal holds only when the windows' values are equal")
	}
}

func TestAnnotationsAndLabels(t *testing.T) {
	r := validRule()
	r.Labels = map[string]string{"team": "ops", "host": "overridden"}
	r.Annotations = map[string]string{
		"summary": `{{.Labels.host}} at {{printf "%.1f" .Value}} (> {{.Threshold}}, {{.Severity}})`,
		"broken":  `{{index .Labels 3}}`,
		"human":   `{{humanize 1234567}} {{humanize 1500}} {{humanize 0.5}} {{humanizePercentage 0.1234}}`,
	}
	labels := r.AlertLabels(map[string]string{"host": "db-1"}, alerting.SeverityCritical)
	if labels["host"] != "db-1" || labels["team"] != "ops" || labels["alertname"] != "cpu" || labels["severity"] != "critical" {
		t.Errorf("labels = %v", labels)
	}
	got := r.RenderAnnotations(rule.TemplateData{RuleName: r.Name, Value: 93.25, HasValue: true, Threshold: 90,
		Severity: alerting.SeverityCritical, Labels: labels})
	if got["summary"] != "db-1 at 93.2 (> 90, critical)" {
		t.Errorf("summary = %q", got["summary"])
	}
	if got["human"] != "1.235M 1.5k 0.5 12.34%" {
		t.Errorf("human = %q", got["human"])
	}
	if !strings.Contains(got["broken"], "template error") {
		t.Errorf("a template failing at run time gives %q, want its error", got["broken"])
	}
}

func TestYAMLFile(t *testing.T) {
	data, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := rule.DecodeFile(data, expr.Compile)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Fatalf("decoded %d rules, want 2", len(rules))
	}
	db, disk := rules[0], rules[1]
	if db.Kind != rule.KindThreshold || db.Query.Metric != "mysql.performance.threads_running" || db.For.D() != 2*time.Minute ||
		db.NoData != rule.NoDataAlerting || !db.Enabled || db.Thresholds[alerting.SeverityWarning].Value != 30 || db.Owner != "alice" {
		t.Errorf("db threads = %+v", db)
	}
	if disk.Enabled || disk.Compare != rule.OpGE || disk.Interval.D() != time.Minute || disk.NoData != rule.NoDataOK {
		t.Errorf("disk = %+v", disk)
	}
	out, err := rule.EncodeFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "threads_running\n") || strings.Contains(string(out), "kind: threshold\n    query:\n      metric: mysql") {
		t.Errorf("a rule from an expression is exported with its condition fields:\n%s", out)
	}
	again, err := rule.DecodeFile(out, expr.Compile)
	if err != nil {
		t.Fatalf("re-import of the export: %v\n%s", err, out)
	}
	for i := range rules {
		a, _ := rules[i].Record()
		b, _ := again[i].Record()
		if string(a.Spec) != string(b.Spec) {
			t.Errorf("rule %d changed through export and import:\n%s\n%s", i, a.Spec, b.Spec)
		}
	}
}

func TestYAMLFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", "rules:\n  - name: a\n    expr: avg(m[5m]) > 1\n    treshold: 3\n", "field treshold not found"},
		{"expr and condition", "rules:\n  - name: a\n    expr: avg(m[5m]) > 1\n    window: 5m\n", "window: is set by expr"},
		{"bad expr", "rules:\n  - name: a\n    expr: avg(m[5m]) >> 1\n", "expr: 1:13: expected a number"},
		{"duplicate name", "rules:\n  - name: a\n    expr: avg(m[5m]) > 1\n  - name: a\n    expr: avg(m[5m]) > 2\n", `rules[1] (line 4): name "a" is also`},
		{"for twice", "rules:\n  - name: a\n    expr: avg(m[5m]) > 1 for 5m\n    for: 1m\n", "for: 1m differs"},
		{"bad duration", "rules:\n  - name: a\n    expr: avg(m[5m]) > 1\n    interval: fast\n", "invalid duration \"fast\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rule.DecodeFile([]byte(tc.yaml), expr.Compile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeFile error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
