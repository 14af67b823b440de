package resolvers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/events"
	"github.com/amas-eye/amas/alerting/expr"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/graph/model"
	"github.com/amas-eye/amas/resolvers/scalar"
	"github.com/amas-eye/amas/store"
)

// RuleStore keeps alert rules (store.Store).
type RuleStore interface {
	AlertRules(ctx context.Context) ([]store.AlertRuleRecord, error)
	AlertRule(ctx context.Context, id int64) (store.AlertRuleRecord, error)
	CreateAlertRule(ctx context.Context, r store.AlertRuleRecord, now time.Time) (store.AlertRuleRecord, error)
	UpdateAlertRule(ctx context.Context, r store.AlertRuleRecord, now time.Time) (store.AlertRuleRecord, error)
	DeleteAlertRule(ctx context.Context, id int64, now time.Time) error
	AlertRuleHealth(ctx context.Context, ruleIDs []int64) (map[int64]store.RuleHealth, error)
	CheckTagRegexes(ctx context.Context, filters []store.TagFilter) error
}

// AlertReader reads alert instances and their history (store.Store).
type AlertReader interface {
	Alerts(ctx context.Context, f store.AlertFilter) ([]store.AlertInstance, error)
	AlertHistory(ctx context.Context, f store.HistoryFilter) ([]store.AlertHistoryEntry, error)
}

// AlertEvents streams state changes as they are committed (events.Hub).
type AlertEvents interface {
	Subscribe(ctx context.Context, f events.Filter) <-chan store.AlertHistoryEntry
}

// RuleDeps serve the alert rule fields (alert_rules*.go).
type RuleDeps struct {
	Rules   RuleStore
	Alerts  AlertReader
	Querier engine.Querier
	Events  AlertEvents
}

var compareOps = map[model.RuleCompare]rule.Op{
	model.RuleCompareGt: rule.OpGT, model.RuleCompareGe: rule.OpGE, model.RuleCompareLt: rule.OpLT,
	model.RuleCompareLe: rule.OpLE, model.RuleCompareEq: rule.OpEQ, model.RuleCompareNe: rule.OpNE,
	model.RuleCompareOutside: rule.OpOutside, model.RuleCompareInside: rule.OpInside,
}

// lower and upper map the GraphQL enums onto the model's lower-case names and back.
func lower[T ~string, U ~string](v T) U { return U(strings.ToLower(string(v))) }
func upper[T ~string, U ~string](v T) U { return U(strings.ToUpper(string(v))) }

func optLower[T ~string, U ~string](v *T) U {
	if v == nil {
		return ""
	}
	return lower[T, U](*v)
}

// ruleIn builds and validates a rule from the API's input; owner is the default owner.
func ruleIn(in model.AlertRuleInput, owner string) (*rule.Rule, error) {
	r := &rule.Rule{
		Name: in.Name, Expr: deref(in.Expr),
		Kind: optLower[model.RuleKind, rule.Kind](in.Kind), Reducer: optLower[model.RuleReducer, rule.Reducer](in.Reducer),
		Window: rule.Duration(deref(in.Window)), Staleness: rule.Duration(deref(in.Staleness)),
		Interval: rule.Duration(deref(in.Interval)), For: rule.Duration(deref(in.For)),
		NoData:  optLower[model.RuleNoData, rule.NoDataPolicy](in.NoData),
		Enabled: in.Enabled == nil || *in.Enabled, Owner: deref(in.Owner),
		Labels: tagMap(in.Labels), Annotations: tagMap(in.Annotations),
	}
	if r.Owner == "" {
		r.Owner = owner
	}
	if in.Query != nil {
		r.Query = rule.Query{Metric: in.Query.Metric, GroupBy: in.Query.GroupBy}
		for _, m := range in.Query.Matchers {
			r.Query.Matchers = append(r.Query.Matchers, rule.Matcher{Key: m.Key, Op: m.Op, Value: m.Value})
		}
	}
	if in.Compare != nil {
		r.Compare = compareOps[*in.Compare]
	}
	if in.Change != nil {
		r.Change = &rule.Change{Offset: rule.Duration(in.Change.Offset), Mode: lower[model.RuleChangeMode, rule.ChangeMode](in.Change.Mode),
			Zero: optLower[model.RuleZeroBase, rule.ZeroBase](in.Change.Zero)}
	}
	if len(in.Thresholds) > 0 {
		r.Thresholds = map[alerting.Severity]rule.Threshold{}
		for _, th := range in.Thresholds {
			sev := lower[model.AlertSeverity, alerting.Severity](th.Severity)
			if _, dup := r.Thresholds[sev]; dup {
				return nil, scalar.Inputf("rule %q: thresholds: %s is given twice", in.Name, sev)
			}
			r.Thresholds[sev] = rule.Threshold{Value: th.Value, High: deref(th.High)}
		}
	}
	if r.Expr != "" {
		if err := r.ApplyExpr(expr.Compile); err != nil {
			return nil, scalar.Inputf("%s", err)
		}
	}
	r.Defaults()
	if err := r.Validate(); err != nil {
		return nil, scalar.Inputf("%s", err)
	}
	return r, nil
}

func tagMap(tags []model.TagInput) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[t.Key] = t.Value
	}
	return out
}

// rulesOut maps stored rules, with their health, for the API.
func (r *Resolver) rulesOut(ctx context.Context, recs ...store.AlertRuleRecord) ([]model.AlertRule, error) {
	ids := make([]int64, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	health, err := r.cfg.AlertRules.Rules.AlertRuleHealth(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]model.AlertRule, len(recs))
	for i, rec := range recs {
		ru, err := ruleOut(rec)
		if err != nil {
			return nil, err
		}
		ru.Health = healthOut(health[rec.ID])
		out[i] = *ru
	}
	return out, nil
}

func healthOut(h store.RuleHealth) *model.RuleHealth {
	out := &model.RuleHealth{LastEvaluation: optTime(h.LastEvalAt)}
	if h.Owner != "" {
		out.Replica = &h.Owner
	}
	if h.NextEvalAt.After(time.Unix(0, 0)) {
		next := h.NextEvalAt
		out.NextEvaluation = &next
	}
	if h.LastError != "" {
		out.LastError = &h.LastError
	}
	return out
}

func ruleOut(rec store.AlertRuleRecord) (*model.AlertRule, error) {
	r, err := rule.FromRecord(rec)
	if err != nil {
		return nil, err
	}
	out := &model.AlertRule{
		ID: formatID(r.ID), Name: r.Name, Kind: upper[rule.Kind, model.RuleKind](r.Kind),
		Query:    &model.RuleQuery{Metric: r.Query.Metric, GroupBy: nonNil(r.Query.GroupBy), Matchers: []model.RuleMatcher{}},
		Interval: r.Interval.D(), For: r.For.D(), NoData: upper[rule.NoDataPolicy, model.RuleNoData](r.NoData),
		Labels: tagList(r.Labels), Annotations: tagList(r.Annotations), Enabled: r.Enabled, Owner: r.Owner,
		Version: int(rec.Version), CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Thresholds: []model.RuleThreshold{},
	}
	if r.Expr != "" {
		out.Expr = &r.Expr
	}
	for _, m := range r.Query.Matchers {
		out.Query.Matchers = append(out.Query.Matchers, model.RuleMatcher{Key: m.Key, Op: m.Op, Value: m.Value})
	}
	if r.Reducer != "" {
		red := upper[rule.Reducer, model.RuleReducer](r.Reducer)
		out.Reducer = &red
	}
	if r.Window > 0 {
		w := r.Window.D()
		out.Window = &w
	}
	if r.Staleness > 0 {
		s := r.Staleness.D()
		out.Staleness = &s
	}
	if r.Change != nil {
		out.Change = &model.RuleChange{Offset: r.Change.Offset.D(), Mode: upper[rule.ChangeMode, model.RuleChangeMode](r.Change.Mode),
			Zero: upper[rule.ZeroBase, model.RuleZeroBase](r.Change.Zero)}
	}
	for k, v := range compareOps {
		if v == r.Compare {
			c := k
			out.Compare = &c
		}
	}
	for _, sev := range r.Severities() {
		th := r.Thresholds[sev]
		mt := model.RuleThreshold{Severity: upper[alerting.Severity, model.AlertSeverity](sev), Value: th.Value}
		if r.Compare.IsRange() {
			mt.High = &th.High
		}
		out.Thresholds = append(out.Thresholds, mt)
	}
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// saveRuleError maps store errors of saving rule name onto user errors.
func saveRuleError(err error, name string, id int64) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return scalar.Inputf("there is already a rule named %q", name)
	case errors.Is(err, store.ErrNotFound):
		return scalar.Inputf("there is no alert rule with id %d", id)
	}
	return err
}

func (r *Resolver) saveRule(ctx context.Context, id int64, in model.AlertRuleInput) (*model.AlertRule, error) {
	ru, err := ruleIn(in, caller(ctx))
	if err != nil {
		return nil, err
	}
	// PostgreSQL's regex dialect decides, now rather than at every evaluation.
	_, filters := ru.SeriesQuery()
	if err := r.cfg.AlertRules.Rules.CheckTagRegexes(ctx, filters); err != nil {
		return nil, previewError(err)
	}
	ru.ID = id
	rec, err := ru.Record()
	if err != nil {
		return nil, err
	}
	now := r.cfg.Now()
	if id == 0 {
		rec, err = r.cfg.AlertRules.Rules.CreateAlertRule(ctx, rec, now)
	} else {
		rec, err = r.cfg.AlertRules.Rules.UpdateAlertRule(ctx, rec, now)
	}
	if err != nil {
		return nil, saveRuleError(err, ru.Name, id)
	}
	out, err := r.rulesOut(ctx, rec)
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// floatOut is v for the API: nil without a value, or when it is not finite (JSON
// has no infinities).
func floatOut(v float64, ok bool) *float64 {
	if !ok || math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

func valueText(g engine.Group) string {
	switch {
	case !g.HasValue:
		return "no data"
	case math.IsInf(g.Value, 1):
		return "+Inf"
	case math.IsInf(g.Value, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(g.Value, 'g', -1, 64)
}

func ruleTestOut(r *rule.Rule, at time.Time, groups []engine.GroupTest, noData bool) *model.RuleTestResult {
	out := &model.RuleTestResult{At: at, NoData: noData, Groups: []model.RuleTestGroup{}}
	for _, g := range groups {
		mg := model.RuleTestGroup{Tags: tagList(g.Tags), Value: floatOut(g.Value, g.HasValue), ValueText: valueText(g.Group),
			Thresholds: []model.RuleTestThreshold{}}
		if g.Severity != "" {
			sev := upper[alerting.Severity, model.AlertSeverity](g.Severity)
			mg.Severity = &sev
		}
		for _, sev := range r.Severities() {
			th := r.Thresholds[sev]
			mt := model.RuleTestThreshold{Severity: upper[alerting.Severity, model.AlertSeverity](sev), Value: th.Value, Passes: g.Passes[sev]}
			if r.Compare.IsRange() {
				mt.High = &th.High
			}
			mg.Thresholds = append(mg.Thresholds, mt)
		}
		out.Groups = append(out.Groups, mg)
	}
	return out
}

func backtestOut(bt engine.Backtest, from, to time.Time) *model.RuleBacktest {
	out := &model.RuleBacktest{From: from, To: to, Step: bt.Step, Evaluations: bt.Evaluations,
		Changes: []model.RuleBacktestChange{}, Firing: []model.RuleBacktestPeriod{}}
	for _, c := range bt.Changes {
		out.Changes = append(out.Changes, model.RuleBacktestChange{At: c.At, Labels: tagList(c.Labels),
			Severity: upper[alerting.Severity, model.AlertSeverity](c.Severity),
			From:     upper[alerting.State, model.AlertState](c.From), To: upper[alerting.State, model.AlertState](c.To),
			Value: floatOut(c.Value, c.HasValue)})
	}
	for _, p := range bt.Firing {
		mp := model.RuleBacktestPeriod{Labels: tagList(p.Labels), Severity: upper[alerting.Severity, model.AlertSeverity](p.Severity), From: p.From}
		if !p.To.IsZero() {
			t := p.To
			mp.To = &t
		}
		out.Firing = append(out.Firing, mp)
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func alertOut(in store.AlertInstance) model.Alert {
	return model.Alert{
		RuleID: formatID(in.RuleID), RuleName: in.RuleName, Fingerprint: in.Fingerprint,
		Labels: tagList(in.Labels), Annotations: tagList(in.Annotations),
		State: upper[alerting.State, model.AlertState](in.State), Severity: upper[alerting.Severity, model.AlertSeverity](in.Severity),
		Value: floatOut(in.Value, in.HasValue), Threshold: in.Threshold,
		ActiveAt: optTime(in.ActiveAt), StartsAt: in.StartsAt, EndsAt: optTime(in.EndsAt), UpdatedAt: in.UpdatedAt,
		GeneratorURL: in.GeneratorURL,
	}
}

func stateChangeOut(e store.AlertHistoryEntry) *model.AlertStateChange {
	return &model.AlertStateChange{
		ID: formatID(e.ID), RuleID: formatID(e.RuleID), RuleName: e.RuleName, Fingerprint: e.Fingerprint,
		Labels: tagList(e.Labels), From: upper[alerting.State, model.AlertState](e.From), To: upper[alerting.State, model.AlertState](e.To),
		Severity: upper[alerting.Severity, model.AlertSeverity](e.Severity), Value: floatOut(e.Value, e.HasValue),
		Threshold: e.Threshold, At: e.At,
	}
}

func statesIn(states []model.AlertState) []alerting.State {
	out := make([]alerting.State, len(states))
	for i, s := range states {
		out[i] = lower[model.AlertState, alerting.State](s)
	}
	return out
}

func optRuleID(id *string) (int64, error) {
	if id == nil {
		return 0, nil
	}
	return parseID("alert rule", *id)
}

func filterLimit(limit *int) (int, error) {
	if limit == nil {
		return 0, nil
	}
	if *limit < 1 || *limit > 10_000 {
		return 0, scalar.Inputf("limit %d is out of range: 1 to 10000", *limit)
	}
	return *limit, nil
}

func alertFilterIn(in *model.AlertFilter) (store.AlertFilter, error) {
	if in == nil {
		return store.AlertFilter{}, nil
	}
	id, err := optRuleID(in.RuleID)
	if err != nil {
		return store.AlertFilter{}, err
	}
	limit, err := filterLimit(in.Limit)
	if err != nil {
		return store.AlertFilter{}, err
	}
	f := store.AlertFilter{States: statesIn(in.States), RuleID: id, Labels: tagMap(in.Labels), Limit: limit}
	for _, s := range in.Severities {
		f.Severities = append(f.Severities, lower[model.AlertSeverity, alerting.Severity](s))
	}
	if in.Since != nil {
		f.Since = *in.Since
	}
	return f, nil
}

func historyFilterIn(in *model.AlertHistoryFilter) (store.HistoryFilter, error) {
	if in == nil {
		return store.HistoryFilter{}, nil
	}
	id, err := optRuleID(in.RuleID)
	if err != nil {
		return store.HistoryFilter{}, err
	}
	limit, err := filterLimit(in.Limit)
	if err != nil {
		return store.HistoryFilter{}, err
	}
	f := store.HistoryFilter{RuleID: id, Fingerprint: deref(in.Fingerprint), States: statesIn(in.States),
		Labels: tagMap(in.Labels), Limit: limit}
	if in.From != nil {
		f.From = *in.From
	}
	if in.To != nil {
		f.To = *in.To
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return store.HistoryFilter{}, scalar.Inputf("from %s is not before to %s", f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))
	}
	return f, nil
}

// previewError makes a query the user's rule caused a user error.
func previewError(err error) error {
	if errors.Is(err, store.ErrBadQuery) {
		return scalar.Inputf("%s", err)
	}
	return fmt.Errorf("evaluate rule: %w", err)
}
