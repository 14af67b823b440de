package expr

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/rule"
)

func TestCompile(t *testing.T) {
	crit, warn, info := alerting.SeverityCritical, alerting.SeverityWarning, alerting.SeverityInfo
	for _, tc := range []struct {
		name string
		src  string
		want rule.Rule
	}{
		{
			name: "threshold with regex and group by",
			src:  `avg(mysql.performance.threads_running{host=~"db-.*"}[5m]) by (host) > 50`,
			want: rule.Rule{
				Kind: rule.KindThreshold, Reducer: rule.ReduceAvg, Window: rule.Duration(5 * time.Minute), Compare: rule.OpGT,
				Query: rule.Query{Metric: "mysql.performance.threads_running",
					Matchers: []rule.Matcher{{Key: "host", Op: "=~", Value: "db-.*"}}, GroupBy: []string{"host"}},
				Thresholds: map[alerting.Severity]rule.Threshold{warn: {Value: 50}},
			},
		},
		{
			name: "severities, several matchers and for",
			src:  "max(os.cpu.used{dc=\"eu\", role!='web'}[10m]) by (host, dc)\n  > 95 critical, > 80 warning for 5m",
			want: rule.Rule{
				Kind: rule.KindThreshold, Reducer: rule.ReduceMax, Window: rule.Duration(10 * time.Minute), Compare: rule.OpGT,
				Query: rule.Query{Metric: "os.cpu.used", GroupBy: []string{"host", "dc"},
					Matchers: []rule.Matcher{{Key: "dc", Op: "=", Value: "eu"}, {Key: "role", Op: "!=", Value: "web"}}},
				Thresholds: map[alerting.Severity]rule.Threshold{crit: {Value: 95}, warn: {Value: 80}},
				For:        rule.Duration(5 * time.Minute),
			},
		},
		{
			name: "last value with staleness",
			src:  `last(agent.heartbeat{}[2m]) by (host) < 1 # the agent went quiet`,
			want: rule.Rule{
				Kind: rule.KindLastValue, Staleness: rule.Duration(2 * time.Minute), Compare: rule.OpLT,
				Query:      rule.Query{Metric: "agent.heartbeat", GroupBy: []string{"host"}},
				Thresholds: map[alerting.Severity]rule.Threshold{warn: {Value: 1}},
			},
		},
		{
			name: "percentage increase week over week",
			src:  `pct_increase(sum(http.requests{service="api"}[1h]), 1w) by (service) > 50 critical`,
			want: rule.Rule{
				Kind: rule.KindChange, Reducer: rule.ReduceSum, Window: rule.Duration(time.Hour), Compare: rule.OpGT,
				Change: &rule.Change{Offset: rule.Duration(7 * 24 * time.Hour), Mode: rule.ChangePctIncrease, Zero: rule.ZeroNoData},
				Query: rule.Query{Metric: "http.requests", GroupBy: []string{"service"},
					Matchers: []rule.Matcher{{Key: "service", Op: "=", Value: "api"}}},
				Thresholds: map[alerting.Severity]rule.Threshold{crit: {Value: 50}},
			},
		},
		{
			name: "percentage decrease with infinite zero base",
			src:  `pct_decrease(count(orders.placed[1h]), 1d, infinite) >= 30`,
			want: rule.Rule{
				Kind: rule.KindChange, Reducer: rule.ReduceCount, Window: rule.Duration(time.Hour), Compare: rule.OpGE,
				Change:     &rule.Change{Offset: rule.Duration(24 * time.Hour), Mode: rule.ChangePctDecrease, Zero: rule.ZeroInfinite},
				Query:      rule.Query{Metric: "orders.placed"},
				Thresholds: map[alerting.Severity]rule.Threshold{warn: {Value: 30}},
			},
		},
		{
			name: "not equal with a severity only",
			src:  `not_equal(last(app.version[10m]), 1d) info`,
			want: rule.Rule{
				Kind: rule.KindChange, Reducer: rule.ReduceLast, Window: rule.Duration(10 * time.Minute),
				Change:     &rule.Change{Offset: rule.Duration(24 * time.Hour), Mode: rule.ChangeNotEqual, Zero: rule.ZeroNoData},
				Query:      rule.Query{Metric: "app.version"},
				Thresholds: map[alerting.Severity]rule.Threshold{info: {}},
			},
		},
		{
			name: "range with negative numbers",
			src:  `avg(temp.c[5m]) by (room) outside(-5, 1.5e1) critical, outside(0, 10)`,
			want: rule.Rule{
				Kind: rule.KindThreshold, Reducer: rule.ReduceAvg, Window: rule.Duration(5 * time.Minute), Compare: rule.OpOutside,
				Query:      rule.Query{Metric: "temp.c", GroupBy: []string{"room"}},
				Thresholds: map[alerting.Severity]rule.Threshold{crit: {Value: -5, High: 15}, warn: {Value: 0, High: 10}},
			},
		},
		{
			name: "anomaly",
			src:  `anomaly(mysql.qps{host="db-1"}[15m]) > 3 for 1h30m`,
			want: rule.Rule{
				Kind: rule.KindAnomaly, Reducer: rule.ReduceMax, Window: rule.Duration(15 * time.Minute), Compare: rule.OpGT,
				Query:      rule.Query{Metric: "mysql.qps", Matchers: []rule.Matcher{{Key: "host", Op: "=", Value: "db-1"}}},
				Thresholds: map[alerting.Severity]rule.Threshold{warn: {Value: 3}},
				For:        rule.Duration(90 * time.Minute),
			},
		},
		{
			name: "PromQL prefix by",
			src:  `p95 by (host, path) (http.latency{}[5m]) >= 0.5 critical`,
			want: rule.Rule{
				Kind: rule.KindThreshold, Reducer: rule.ReduceP95, Window: rule.Duration(5 * time.Minute), Compare: rule.OpGE,
				Query:      rule.Query{Metric: "http.latency", GroupBy: []string{"host", "path"}},
				Thresholds: map[alerting.Severity]rule.Threshold{crit: {Value: 0.5}},
			},
		},
		{
			name: "rate and p95",
			src:  `rate(net.bytes{iface!~"lo|docker.*"}[1m]) by (host) > 1e8`,
			want: rule.Rule{
				Kind: rule.KindThreshold, Reducer: rule.ReduceRate, Window: rule.Duration(time.Minute), Compare: rule.OpGT,
				Query: rule.Query{Metric: "net.bytes", GroupBy: []string{"host"},
					Matchers: []rule.Matcher{{Key: "iface", Op: "!~", Value: "lo|docker.*"}}},
				Thresholds: map[alerting.Severity]rule.Threshold{warn: {Value: 1e8}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compile(tc.src)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			tc.want.Expr = tc.src
			assertCondition(t, got, &tc.want)
			// What compiles is a valid rule once named.
			got.Name = "r"
			got.Defaults()
			if err := got.Validate(); err != nil {
				t.Errorf("compiled rule does not validate: %v", err)
			}
		})
	}
}

func assertCondition(t *testing.T, got, want *rule.Rule) {
	t.Helper()
	a, err := got.Record()
	if err != nil {
		t.Fatal(err)
	}
	b, err := want.Record()
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Spec) != string(b.Spec) {
		t.Errorf("compiled\n  %s\nwant\n  %s", a.Spec, b.Spec)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"empty", ``, 1, 1, "expected a reducer"},
		{"unknown reducer", `median(m[5m]) > 1`, 1, 1, "unknown reducer \"median\""},
		{"unknown reducer in change", `pct_increase(median(m[5m]), 1d) > 1`, 1, 14, "unknown reducer"},
		{"window not closed", `avg(m{host="a"}[5m}) > 1`, 1, 19, `expected "]" after the window`},
		{"missing window", `avg(m{host="a"}) > 1`, 1, 16, "and the window"},
		{"bad matcher op", `avg(m{host=="a"}[5m]) > 1`, 1, 11, "expected =, !=, =~ or !~"},
		{"unquoted value", `avg(m{host=a}[5m]) > 1`, 1, 12, "expected a quoted value"},
		{"no condition", `avg(m[5m]) by (host)`, 1, 21, "expected a comparison"},
		{"missing threshold number", `avg(m[5m]) >`, 1, 13, "expected a number after >"},
		{"mixed comparisons", `avg(m[5m]) > 1 critical, < 0`, 1, 26, "same comparison"},
		{"duplicate severity", `avg(m[5m]) > 1, > 2`, 1, 17, "warning has a threshold already"},
		{"bad duration unit", `avg(m[5x]) > 1`, 1, 7, "invalid duration"},
		{"negative duration", `avg(m[-5m]) > 1`, 1, 7, "cannot be negative"},
		{"trailing garbage", `avg(m[5m]) > 1 for 5m please`, 1, 23, "unexpected \"please\""},
		{"string not closed", `avg(m{host="a}[5m]) > 1`, 1, 12, "string not closed"},
		{"reversed range", `avg(m[5m]) outside(10, 1)`, 1, 20, "low end is above"},
		{"threshold for equal", `equal(avg(m[5m]), 1d) > 3`, 1, 23, "give only a severity"},
		{"zero base", `pct_increase(avg(m[5m]), 1d, zero) > 3`, 1, 30, "expected nodata or infinite"},
		{"second line", "avg(m[5m])\n  by (host\n  > 3", 3, 3, `expected "," or ")"`},
		{"odd character", `avg(m[5m]) > 1 ; 2`, 1, 16, "unexpected character ';'"},
		{"by twice", `avg by (a) (m[5m]) by (b) > 1`, 1, 20, "by is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.src)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) = %v, want an *Error", tc.src, err)
			}
			if e.Line != tc.line || e.Col != tc.col || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("error %d:%d %q, want %d:%d containing %q", e.Line, e.Col, e.Msg, tc.line, tc.col, tc.msg)
			}
			// The caret sits under the column.
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 3 || len(lines[2])-2 != tc.col {
				t.Errorf("caret display:\n%s", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`avg(mysql.performance.threads_running{host=~"db-.*"}[5m]) by (host) > 50`,
		`pct_increase(sum(http.requests{service="api"}[1h]), 1w, infinite) by (service) > 50 critical, > 20 for 5m`,
		`last(agent.heartbeat[2m]) < 1`,
		`avg(t[5m]) inside(-1, 1e3) info`,
		`equal(max(x{a!~'b'}[1m]), 1d) critical`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		r, err := Compile(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) error %T %v is not an *Error", src, err, err)
			}
			if e.Line < 1 || e.Col < 1 {
				t.Fatalf("Compile(%q): position %d:%d", src, e.Line, e.Col)
			}
			return
		}
		if r.Query.Metric == "" || len(r.Thresholds) == 0 || r.Kind == "" {
			t.Fatalf("Compile(%q) gave an incomplete rule %+v", src, r)
		}
		// Compiling is deterministic.
		again, err := Compile(src)
		if err != nil {
			t.Fatalf("second Compile(%q): %v", src, err)
		}
		a, _ := r.Record()
		b, _ := again.Record()
		if string(a.Spec) != string(b.Spec) {
			t.Fatalf("Compile(%q) not deterministic", src)
		}
	})
}
