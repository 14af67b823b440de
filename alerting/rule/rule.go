// Package rule is the alert rule model: what a rule queries, how it reduces the
// window to one value per group, how that value is compared with the thresholds
// of each severity, and the settings every rule has (interval, for, no-data
// policy, labels, annotations, enabled, owner). It validates rules with errors
// that name the field, encodes them for the store (JSON) and for review in git
// (YAML). The expression language (alerting/expr) compiles to this model; the
// evaluator (alerting/engine) runs it.
package rule

import (
	"fmt"
	"maps"
	"slices"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/store"
)

// Kind is what a rule tests.
type Kind string

const (
	// KindThreshold compares the window's reduced value with the thresholds.
	KindThreshold Kind = "threshold"
	// KindLastValue compares the newest point, which must be younger than
	// Staleness; a group whose newest point is older has no data.
	KindLastValue Kind = "lastvalue"
	// KindChange compares the window's value with the same window Change.Offset
	// earlier (period over period).
	KindChange Kind = "change"
	// KindAnomaly compares the anomaly score of the matching series (see
	// AnomalyMetric) with the thresholds.
	KindAnomaly Kind = "anomaly"
)

// Kinds lists the kinds in documentation order.
var Kinds = []Kind{KindThreshold, KindLastValue, KindChange, KindAnomaly}

// AnomalyMetric is the metric the ML worker writes anomaly scores to. A score
// series carries the tag AnomalyMetricTag=<the scored metric> and every tag of the
// scored series; an anomaly rule on metric M with filters F is a threshold rule
// on AnomalyMetric with filters F plus AnomalyMetricTag=M.
const (
	AnomalyMetric    = "amas.anomaly.score"
	AnomalyMetricTag = "metric"
)

// Reducer turns the points of a group's series in the window into one value.
type Reducer string

const (
	ReduceAvg   Reducer = "avg"
	ReduceMin   Reducer = "min"
	ReduceMax   Reducer = "max"
	ReduceSum   Reducer = "sum"
	ReduceCount Reducer = "count"
	ReduceLast  Reducer = "last"
	ReduceRate  Reducer = "rate"
	ReduceP95   Reducer = "p95"
)

// Reducers lists the reducers in documentation order.
var Reducers = []Reducer{ReduceAvg, ReduceMin, ReduceMax, ReduceSum, ReduceCount, ReduceLast, ReduceRate, ReduceP95}

// Op compares a value with a threshold (or, for outside and inside, a range).
type Op string

const (
	OpGT      Op = ">"
	OpGE      Op = ">="
	OpLT      Op = "<"
	OpLE      Op = "<="
	OpEQ      Op = "=="
	OpNE      Op = "!="
	OpOutside Op = "outside" // value < low or value > high
	OpInside  Op = "inside"  // low <= value <= high
)

// Ops lists the comparisons in documentation order.
var Ops = []Op{OpGT, OpGE, OpLT, OpLE, OpEQ, OpNE, OpOutside, OpInside}

// IsRange reports whether op compares with a range [low, high].
func (op Op) IsRange() bool { return op == OpOutside || op == OpInside }

// ChangeMode is how a period-over-period rule turns the two windows' values
// (current c, earlier e) into the compared value.
type ChangeMode string

const (
	// ChangePctIncrease is (c - e) / |e| * 100: positive when c rose.
	ChangePctIncrease ChangeMode = "pct_increase"
	// ChangePctDecrease is (e - c) / |e| * 100: positive when c fell.
	ChangePctDecrease ChangeMode = "pct_decrease"
	// ChangeAbs is c - e.
	ChangeAbs ChangeMode = "abs_change"
	// ChangeEqual holds when c == e; ChangeNotEqual when c != e. Their value is
	// c - e and their thresholds only name the severity (value 0).
	ChangeEqual    ChangeMode = "equal"
	ChangeNotEqual ChangeMode = "not_equal"
)

// ChangeModes lists the modes in documentation order.
var ChangeModes = []ChangeMode{ChangePctIncrease, ChangePctDecrease, ChangeAbs, ChangeEqual, ChangeNotEqual}

// ZeroBase says what a percentage change from an earlier value of 0 is.
type ZeroBase string

const (
	// ZeroNoData: there is no percentage from zero; the group has no data and
	// the no-data policy decides (the default).
	ZeroNoData ZeroBase = "nodata"
	// ZeroInfinite: a change away from zero is an infinite percentage in its
	// direction (so it passes any > threshold of that direction), no change is 0%.
	ZeroInfinite ZeroBase = "infinite"
)

// NoDataPolicy is what a rule does when its query finds nothing.
type NoDataPolicy string

const (
	// NoDataOK treats no data as the condition not holding: open alerts resolve.
	NoDataOK NoDataPolicy = "ok"
	// NoDataAlerting treats no data as the condition holding (after for).
	NoDataAlerting NoDataPolicy = "alerting"
	// NoDataState puts the alerts in the nodata state, reported like an alert.
	NoDataState NoDataPolicy = "nodata"
)

// NoDataPolicies lists the policies in documentation order.
var NoDataPolicies = []NoDataPolicy{NoDataOK, NoDataAlerting, NoDataState}

// Matcher selects series by one tag, as in PromQL: = and != compare literally,
// =~ and !~ with a PostgreSQL regular expression anchored at both ends.
type Matcher struct {
	Key   string `json:"key" yaml:"key"`
	Op    string `json:"op" yaml:"op"`
	Value string `json:"value" yaml:"value"`
}

// MatcherOps maps the matcher operators onto the store's filter operators.
var MatcherOps = map[string]store.FilterOp{"=": store.OpEQ, "!=": store.OpNEQ, "=~": store.OpRegex, "!~": store.OpNRegex}

// Query selects the series a rule reads and splits them into groups.
type Query struct {
	Metric   string    `json:"metric" yaml:"metric"`
	Matchers []Matcher `json:"matchers,omitempty" yaml:"matchers,omitempty"`
	// GroupBy tags split the evaluation: one alert instance per combination of
	// their values (the old system's "*"). Empty: one group.
	GroupBy []string `json:"group_by,omitempty" yaml:"group_by,omitempty"`
}

// Filters are the store filters of the matchers.
func (q Query) Filters() []store.TagFilter {
	out := make([]store.TagFilter, len(q.Matchers))
	for i, m := range q.Matchers {
		out[i] = store.TagFilter{Key: m.Key, Op: MatcherOps[m.Op], Value: m.Value}
	}
	return out
}

// Threshold is one severity's limit; High is the upper end of a range comparison.
type Threshold struct {
	Value float64 `json:"value" yaml:"value"`
	High  float64 `json:"high,omitempty" yaml:"high,omitempty"`
}

// Change configures a period-over-period rule.
type Change struct {
	Offset Duration   `json:"offset" yaml:"offset"`
	Mode   ChangeMode `json:"mode" yaml:"mode"`
	Zero   ZeroBase   `json:"zero,omitempty" yaml:"zero,omitempty"`
}

// Rule is one alert rule.
type Rule struct {
	ID      int64  `json:"-" yaml:"-"`
	Version int64  `json:"-" yaml:"-"`
	Name    string `json:"name" yaml:"name"`
	// Expr is the expression the condition was compiled from, when it was.
	Expr      string   `json:"expr,omitempty" yaml:"expr,omitempty"`
	Kind      Kind     `json:"kind" yaml:"kind,omitempty"`
	Query     Query    `json:"query" yaml:"query,omitempty"`
	Reducer   Reducer  `json:"reducer,omitempty" yaml:"reducer,omitempty"`
	Window    Duration `json:"window,omitempty" yaml:"window,omitempty"`
	Staleness Duration `json:"staleness,omitempty" yaml:"staleness,omitempty"`
	Change    *Change  `json:"change,omitempty" yaml:"change,omitempty"`
	Compare   Op       `json:"compare,omitempty" yaml:"compare,omitempty"`
	// Thresholds per severity; at least one.
	Thresholds  map[alerting.Severity]Threshold `json:"thresholds" yaml:"thresholds,omitempty"`
	Interval    Duration                        `json:"interval" yaml:"interval"`
	For         Duration                        `json:"for,omitempty" yaml:"for,omitempty"`
	NoData      NoDataPolicy                    `json:"no_data" yaml:"no_data"`
	Labels      map[string]string               `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string               `json:"annotations,omitempty" yaml:"annotations,omitempty"`
	Enabled     bool                            `json:"enabled" yaml:"enabled"`
	Owner       string                          `json:"owner,omitempty" yaml:"owner,omitempty"`
}

// Severities are the severities with a threshold, the most urgent first.
func (r *Rule) Severities() []alerting.Severity {
	out := slices.Collect(maps.Keys(r.Thresholds))
	slices.SortFunc(out, func(a, b alerting.Severity) int { return b.Rank() - a.Rank() })
	return out
}

// SeriesQuery is what the rule reads: for an anomaly rule the score series of the
// queried metric.
func (r *Rule) SeriesQuery() (metric string, filters []store.TagFilter) {
	filters = r.Query.Filters()
	if r.Kind == KindAnomaly {
		return AnomalyMetric, append(filters, store.TagFilter{Key: AnomalyMetricTag, Op: store.OpEQ, Value: r.Query.Metric})
	}
	return r.Query.Metric, filters
}

// Lookback is the window the rule reads back from the evaluation time.
func (r *Rule) Lookback() Duration {
	if r.Kind == KindLastValue {
		return r.Staleness
	}
	return r.Window
}

// EffectiveReducer is the reducer the rule applies (last for last-value rules).
func (r *Rule) EffectiveReducer() Reducer {
	if r.Kind == KindLastValue {
		return ReduceLast
	}
	return r.Reducer
}

// Defaults fills what a rule may omit: interval 1m, no-data policy ok, reducer avg
// (max for anomaly rules), and zero base nodata.
func (r *Rule) Defaults() {
	if r.Interval == 0 {
		r.Interval = Duration(DefaultInterval)
	}
	if r.NoData == "" {
		r.NoData = NoDataOK
	}
	if r.Reducer == "" && r.Kind != KindLastValue {
		r.Reducer = ReduceAvg
		if r.Kind == KindAnomaly {
			r.Reducer = ReduceMax
		}
	}
	if r.Change != nil && r.Change.Zero == "" {
		r.Change.Zero = ZeroNoData
	}
}

// String is the rule's name and id, for logs.
func (r *Rule) String() string { return fmt.Sprintf("%q (id %d)", r.Name, r.ID) }
