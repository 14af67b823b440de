package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting"
)

// AlertsChannel is the NOTIFY channel on which the engine announces state changes.
const AlertsChannel = "amas_alerts"

// AlertEvent is the payload of one NOTIFY on AlertsChannel: one state change of one
// instance. It stays far below PostgreSQL's 8000-byte payload limit because labels
// and annotations are not in it; HistoryID finds the full change in alert_history.
type AlertEvent struct {
	HistoryID   int64          `json:"history_id"`
	RuleID      int64          `json:"rule_id"`
	Fingerprint string         `json:"fingerprint"`
	From        alerting.State `json:"from"`
	State       alerting.State `json:"state"`
	Severity    string         `json:"severity"`
	At          time.Time      `json:"at"`
}

// AlertInstance is one stored instance: the shared Alert plus what the engine
// needs to carry its state machine across restarts and replicas.
type AlertInstance struct {
	alerting.Alert
	HasValue bool      // false: the last evaluation found no data
	ActiveAt time.Time // since when the condition has held; zero when it does not
}

const alertColumns = `rule_id, fingerprint, rule_name, labels, annotations, state, severity,
    value, threshold, active_at, starts_at, ends_at, updated_at`

func scanAlertInstance(row pgx.Row) (AlertInstance, error) {
	var (
		in       AlertInstance
		value    *float64
		activeAt *time.Time
		endsAt   *time.Time
		severity string
	)
	err := row.Scan(&in.RuleID, &in.Fingerprint, &in.RuleName, &in.Labels, &in.Annotations, &in.State,
		&severity, &value, &in.Threshold, &activeAt, &in.StartsAt, &endsAt, &in.UpdatedAt)
	if err != nil {
		return AlertInstance{}, err
	}
	in.Severity = alerting.Severity(severity)
	if value != nil {
		in.Value, in.HasValue = *value, true
	}
	if activeAt != nil {
		in.ActiveAt = *activeAt
	}
	if endsAt != nil {
		in.EndsAt = *endsAt
	}
	in.GeneratorURL = RuleURL(in.RuleID)
	return in, nil
}

// RuleURL is the web app's page of a rule, relative to the server's address.
func RuleURL(ruleID int64) string { return "/alerting/rules/" + strconv.FormatInt(ruleID, 10) }

const selectActiveAlerts = `SELECT ` + alertColumns + ` FROM alert_instances
WHERE state IN ('firing', 'nodata') OR (state = 'resolved' AND ends_at >= $1)
ORDER BY rule_id, fingerprint`

// ActiveAlerts returns every firing alert, every alert in the nodata state (a rule
// whose no-data policy is "nodata" reports it like an alert), and the alerts
// resolved at or after resolvedSince. Value is 0 for an alert without data.
func (s *Store) ActiveAlerts(ctx context.Context, resolvedSince time.Time) ([]alerting.Alert, error) {
	rows, err := s.pool.Query(ctx, selectActiveAlerts, resolvedSince)
	if err != nil {
		return nil, fmt.Errorf("read active alerts: %w", err)
	}
	defer rows.Close()
	var out []alerting.Alert
	for rows.Next() {
		in, err := scanAlertInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("read active alerts: %w", err)
		}
		out = append(out, in.Alert)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read active alerts: %w", err)
	}
	return out, nil
}

const selectRuleInstances = `SELECT ` + alertColumns + ` FROM alert_instances
WHERE rule_id = ANY($1) ORDER BY rule_id, fingerprint`

// AlertInstancesOfRules returns the stored instances of the given rules, by rule:
// what an engine loads when it takes a rule over.
func (s *Store) AlertInstancesOfRules(ctx context.Context, ruleIDs []int64) (map[int64][]AlertInstance, error) {
	rows, err := s.pool.Query(ctx, selectRuleInstances, ruleIDs)
	if err != nil {
		return nil, fmt.Errorf("read alert instances: %w", err)
	}
	defer rows.Close()
	out := map[int64][]AlertInstance{}
	for rows.Next() {
		in, err := scanAlertInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("read alert instances: %w", err)
		}
		out[in.RuleID] = append(out[in.RuleID], in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alert instances: %w", err)
	}
	return out, nil
}

// AlertFilter selects instances for the alerts query; zero fields select all.
type AlertFilter struct {
	States     []alerting.State
	Severities []alerting.Severity
	RuleID     int64
	Labels     map[string]string // every pair must be in the instance's labels
	Since      time.Time         // updated at or after
	Limit      int               // zero: 1000
}

const selectAlerts = `SELECT ` + alertColumns + ` FROM alert_instances
WHERE (cardinality($1::text[]) = 0 OR state = ANY($1))
  AND (cardinality($2::text[]) = 0 OR severity = ANY($2))
  AND ($3 = 0 OR rule_id = $3)
  AND labels @> $4::jsonb
  AND updated_at >= $5
ORDER BY updated_at DESC, rule_id, fingerprint
LIMIT $6`

// Alerts lists instances matching f, the most recently evaluated first.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]AlertInstance, error) {
	labels, err := json.Marshal(nonNilLabels(f.Labels))
	if err != nil {
		return nil, fmt.Errorf("encode label filter: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	since := f.Since
	if since.IsZero() {
		since = time.Unix(0, 0)
	}
	rows, err := s.pool.Query(ctx, selectAlerts, stateStrings(f.States), severityStrings(f.Severities),
		f.RuleID, string(labels), since, limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []AlertInstance
	for rows.Next() {
		in, err := scanAlertInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

func nonNilLabels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

func stateStrings(states []alerting.State) []string {
	out := make([]string, len(states))
	for i, st := range states {
		out[i] = string(st)
	}
	return out
}

func severityStrings(sevs []alerting.Severity) []string {
	out := make([]string, len(sevs))
	for i, sv := range sevs {
		out[i] = string(sv)
	}
	return out
}

// RuleEvaluation is what one evaluation of one rule changed: the instance rows to
// write (new ones, changed states, and the value of every open one), the state
// changes to record in alert_history, and when the rule is next due.
type RuleEvaluation struct {
	RuleID      int64
	RuleVersion int64 // the definition evaluated; a rule edited since is not written
	NextEvalAt  time.Time
	Error       string // why the evaluation failed; empty when it did not
	Instances   []AlertInstance
	Changes     []StateChange
}

// StateChange is one transition of one instance of the evaluated rule; the
// instance itself is among the evaluation's Instances.
type StateChange struct {
	Fingerprint string
	From        alerting.State
}

// fenceEvaluations locks, of the evaluated rules, the leases the owner still holds
// for the definition it evaluated; the others are not written.
const fenceEvaluations = `
SELECT l.rule_id FROM alert_rule_leases l
JOIN alert_rules r ON r.id = l.rule_id
JOIN unnest($1::bigint[], $2::bigint[]) AS e(rule_id, version) ON e.rule_id = l.rule_id
WHERE l.owner = $3 AND l.lease_until >= $4 AND r.enabled AND r.version = e.version
FOR UPDATE OF l FOR SHARE OF r`

const upsertInstances = `
INSERT INTO alert_instances (` + alertColumns + `)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[], $7::text[],
    $8::float8[], $9::float8[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[])
ON CONFLICT (rule_id, fingerprint) DO UPDATE SET
    rule_name = EXCLUDED.rule_name, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
    state = EXCLUDED.state, severity = EXCLUDED.severity, value = EXCLUDED.value, threshold = EXCLUDED.threshold,
    active_at = EXCLUDED.active_at, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
    updated_at = EXCLUDED.updated_at`

const insertHistory = `
INSERT INTO alert_history (rule_id, rule_name, fingerprint, labels, from_state, to_state, severity, value, threshold, at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::text[],
    $8::float8[], $9::float8[], $10::timestamptz[])
RETURNING id, rule_id, fingerprint, from_state, to_state, severity, at`

const advanceLeases = `
UPDATE alert_rule_leases l SET next_eval_at = e.next_eval_at, last_eval_at = $2, last_error = e.error
FROM unnest($1::bigint[], $3::timestamptz[], $4::text[]) AS e(rule_id, next_eval_at, error)
WHERE l.rule_id = e.rule_id`

const notifyAlerts = `SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p`

// CommitEvaluations writes, in one transaction, the evaluations of rules whose
// leases owner still holds at now (and whose definition has not changed since):
// instances, history, next due times, and one NOTIFY on AlertsChannel per state
// change. It returns the rules written and the changes announced; an evaluation
// of a rule whose lease was lost is dropped, so a rule is never written by two
// replicas.
func (s *Store) CommitEvaluations(ctx context.Context, owner string, now time.Time, evals []RuleEvaluation) ([]int64, []AlertEvent, error) {
	if len(evals) == 0 {
		return nil, nil, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("commit evaluations: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	held, err := fence(ctx, tx, owner, now, evals)
	if err != nil {
		return nil, nil, err
	}
	var kept []RuleEvaluation
	var written []int64
	for _, e := range evals {
		if held[e.RuleID] {
			kept = append(kept, e)
			written = append(written, e.RuleID)
		}
	}
	if len(kept) == 0 {
		return nil, nil, nil
	}
	if err := writeInstances(ctx, tx, kept); err != nil {
		return nil, nil, err
	}
	events, err := writeHistory(ctx, tx, kept)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]int64, len(kept))
	next := make([]time.Time, len(kept))
	errs := make([]string, len(kept))
	for i, e := range kept {
		ids[i], next[i], errs[i] = e.RuleID, e.NextEvalAt, e.Error
	}
	if _, err := tx.Exec(ctx, advanceLeases, ids, now, next, errs); err != nil {
		return nil, nil, fmt.Errorf("advance rule schedule: %w", err)
	}
	if err := notifyEvents(ctx, tx, events); err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("commit evaluations: %w", err)
	}
	return written, events, nil
}

func fence(ctx context.Context, tx pgx.Tx, owner string, now time.Time, evals []RuleEvaluation) (map[int64]bool, error) {
	ids := make([]int64, len(evals))
	versions := make([]int64, len(evals))
	for i, e := range evals {
		ids[i], versions[i] = e.RuleID, e.RuleVersion
	}
	rows, err := tx.Query(ctx, fenceEvaluations, ids, versions, owner, now)
	if err != nil {
		return nil, fmt.Errorf("check rule leases: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("check rule leases: %w", err)
	}
	out := make(map[int64]bool, len(held))
	for _, id := range held {
		out[id] = true
	}
	return out, nil
}

// instanceColumns are the per-column arrays of an unnest insert of instances.
type instanceColumns struct {
	ruleIDs                                  []int64
	fingerprints, names, labels, annotations []string
	states, severities                       []string
	values                                   []*float64
	thresholds                               []float64
	activeAt, startsAt, endsAt, updatedAt    []*time.Time
}

func (c *instanceColumns) add(in AlertInstance) error {
	labels, err := json.Marshal(nonNilLabels(in.Labels))
	if err != nil {
		return fmt.Errorf("encode labels of alert %s: %w", in.Fingerprint, err)
	}
	annotations, err := json.Marshal(nonNilLabels(in.Annotations))
	if err != nil {
		return fmt.Errorf("encode annotations of alert %s: %w", in.Fingerprint, err)
	}
	c.ruleIDs = append(c.ruleIDs, in.RuleID)
	c.fingerprints = append(c.fingerprints, in.Fingerprint)
	c.names = append(c.names, in.RuleName)
	c.labels = append(c.labels, string(labels))
	c.annotations = append(c.annotations, string(annotations))
	c.states = append(c.states, string(in.State))
	c.severities = append(c.severities, string(in.Severity))
	c.values = append(c.values, valueOf(in))
	c.thresholds = append(c.thresholds, in.Threshold)
	startsAt, updatedAt := in.StartsAt, in.UpdatedAt
	c.activeAt = append(c.activeAt, timeOrNil(in.ActiveAt))
	c.startsAt = append(c.startsAt, &startsAt)
	c.endsAt = append(c.endsAt, timeOrNil(in.EndsAt))
	c.updatedAt = append(c.updatedAt, &updatedAt)
	return nil
}

func valueOf(in AlertInstance) *float64 {
	if !in.HasValue {
		return nil
	}
	v := in.Value
	return &v
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func writeInstances(ctx context.Context, tx pgx.Tx, evals []RuleEvaluation) error {
	var c instanceColumns
	for _, e := range evals {
		for _, in := range e.Instances {
			if err := c.add(in); err != nil {
				return err
			}
		}
	}
	if len(c.ruleIDs) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, upsertInstances, c.ruleIDs, c.fingerprints, c.names, c.labels, c.annotations,
		c.states, c.severities, c.values, c.thresholds, c.activeAt, c.startsAt, c.endsAt, c.updatedAt)
	if err != nil {
		return fmt.Errorf("write alert instances: %w", err)
	}
	return nil
}

func writeHistory(ctx context.Context, tx pgx.Tx, evals []RuleEvaluation) ([]AlertEvent, error) {
	var c instanceColumns
	var from []string
	for _, e := range evals {
		byFP := make(map[string]AlertInstance, len(e.Instances))
		for _, in := range e.Instances {
			byFP[in.Fingerprint] = in
		}
		for _, ch := range e.Changes {
			in, ok := byFP[ch.Fingerprint]
			if !ok {
				return nil, fmt.Errorf("state change of alert %s of rule %d has no instance", ch.Fingerprint, e.RuleID)
			}
			if err := c.add(in); err != nil {
				return nil, err
			}
			from = append(from, string(ch.From))
		}
	}
	if len(from) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, insertHistory, c.ruleIDs, c.names, c.fingerprints, c.labels, from, c.states,
		c.severities, c.values, c.thresholds, c.updatedAt)
	if err != nil {
		return nil, fmt.Errorf("write alert history: %w", err)
	}
	defer rows.Close()
	var events []AlertEvent
	for rows.Next() {
		var ev AlertEvent
		if err := rows.Scan(&ev.HistoryID, &ev.RuleID, &ev.Fingerprint, &ev.From, &ev.State, &ev.Severity, &ev.At); err != nil {
			return nil, fmt.Errorf("write alert history: %w", err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("write alert history: %w", err)
	}
	return events, nil
}

func notifyEvents(ctx context.Context, tx pgx.Tx, events []AlertEvent) error {
	if len(events) == 0 {
		return nil
	}
	payloads := make([]string, len(events))
	for i, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode alert event: %w", err)
		}
		payloads[i] = string(b)
	}
	var n int64
	if err := tx.QueryRow(ctx, notifyAlerts, AlertsChannel, payloads).Scan(&n); err != nil {
		return fmt.Errorf("notify %s: %w", AlertsChannel, err)
	}
	return nil
}

// AlertHistoryEntry is one stored state change.
type AlertHistoryEntry struct {
	ID          int64
	RuleID      int64
	RuleName    string
	Fingerprint string
	Labels      alerting.Labels
	From, To    alerting.State
	Severity    alerting.Severity
	Value       float64
	HasValue    bool
	Threshold   float64
	At          time.Time
}

// HistoryFilter selects state changes; zero fields select all.
type HistoryFilter struct {
	RuleID      int64
	Fingerprint string
	States      []alerting.State // the state changed to
	Labels      map[string]string
	From, To    time.Time // at in [From, To); zero To: no upper bound
	Limit       int       // zero: 1000
	IDs         []int64   // only these entries
	AfterID     int64     // only entries with a greater id
}

const historyColumns = `id, rule_id, rule_name, fingerprint, labels, from_state, to_state, severity, value, threshold, at`

const selectHistory = `SELECT ` + historyColumns + ` FROM alert_history
WHERE ($1 = 0 OR rule_id = $1)
  AND ($2 = '' OR fingerprint = $2)
  AND (cardinality($3::text[]) = 0 OR to_state = ANY($3))
  AND labels @> $4::jsonb
  AND at >= $5 AND ($6::timestamptz IS NULL OR at < $6)
  AND (cardinality($7::bigint[]) = 0 OR id = ANY($7))
  AND id > $9
ORDER BY at DESC, id DESC
LIMIT $8`

// AlertHistory lists state changes matching f, newest first.
func (s *Store) AlertHistory(ctx context.Context, f HistoryFilter) ([]AlertHistoryEntry, error) {
	labels, err := json.Marshal(nonNilLabels(f.Labels))
	if err != nil {
		return nil, fmt.Errorf("encode label filter: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	from := f.From
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	ids := f.IDs
	if ids == nil {
		ids = []int64{}
	}
	rows, err := s.pool.Query(ctx, selectHistory, f.RuleID, f.Fingerprint, stateStrings(f.States), string(labels),
		from, timeOrNil(f.To), ids, limit, f.AfterID)
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	defer rows.Close()
	var out []AlertHistoryEntry
	for rows.Next() {
		var (
			e        AlertHistoryEntry
			value    *float64
			severity string
		)
		if err := rows.Scan(&e.ID, &e.RuleID, &e.RuleName, &e.Fingerprint, &e.Labels, &e.From, &e.To,
			&severity, &value, &e.Threshold, &e.At); err != nil {
			return nil, fmt.Errorf("read alert history: %w", err)
		}
		e.Severity = alerting.Severity(severity)
		if value != nil {
			e.Value, e.HasValue = *value, true
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	return out, nil
}

const deleteClosedAlerts = `DELETE FROM alert_instances WHERE state IN ('inactive', 'resolved') AND updated_at < $1`

// DeleteClosedAlerts removes the instances that are inactive or resolved and were
// last written before before (their history stays), and returns how many.
func (s *Store) DeleteClosedAlerts(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, deleteClosedAlerts, before)
	if err != nil {
		return 0, fmt.Errorf("delete closed alerts: %w", err)
	}
	return tag.RowsAffected(), nil
}
