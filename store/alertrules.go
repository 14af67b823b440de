package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AlertRuleRecord is a stored alert rule. Spec is the rule's definition as
// alerting/rule encodes it; the other fields are kept in columns for SQL.
type AlertRuleRecord struct {
	ID        int64
	Name      string
	Spec      json.RawMessage
	Interval  time.Duration
	Enabled   bool
	Owner     string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

const ruleColumns = `id, name, spec, interval_ms, enabled, owner, version, created_at, updated_at`

func scanRule(row pgx.Row) (AlertRuleRecord, error) {
	var (
		r  AlertRuleRecord
		ms int64
	)
	if err := row.Scan(&r.ID, &r.Name, &r.Spec, &ms, &r.Enabled, &r.Owner, &r.Version, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return AlertRuleRecord{}, err
	}
	r.Interval = time.Duration(ms) * time.Millisecond
	return r, nil
}

const insertRule = `
INSERT INTO alert_rules (name, spec, interval_ms, enabled, owner, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)
RETURNING ` + ruleColumns

const insertLease = `INSERT INTO alert_rule_leases (rule_id) VALUES ($1)`

// CreateAlertRule stores a new rule and its (free) lease; a taken name gives
// ErrConflict.
func (s *Store) CreateAlertRule(ctx context.Context, r AlertRuleRecord, now time.Time) (AlertRuleRecord, error) {
	var out AlertRuleRecord
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = createRule(ctx, tx, r, now)
		return err
	})
	return out, err
}

func createRule(ctx context.Context, tx pgx.Tx, r AlertRuleRecord, now time.Time) (AlertRuleRecord, error) {
	out, err := scanRule(tx.QueryRow(ctx, insertRule, r.Name, string(r.Spec), r.Interval.Milliseconds(), r.Enabled, r.Owner, now))
	if isUniqueViolation(err) {
		return AlertRuleRecord{}, fmt.Errorf("alert rule %q: %w", r.Name, ErrConflict)
	}
	if err != nil {
		return AlertRuleRecord{}, fmt.Errorf("create alert rule %q: %w", r.Name, err)
	}
	if _, err := tx.Exec(ctx, insertLease, out.ID); err != nil {
		return AlertRuleRecord{}, fmt.Errorf("create lease of alert rule %q: %w", r.Name, err)
	}
	return out, nil
}

const updateRule = `
UPDATE alert_rules SET name = $2, spec = $3, interval_ms = $4, enabled = $5, owner = $6,
    version = version + 1, updated_at = $7
WHERE id = $1
RETURNING ` + ruleColumns

// UpdateAlertRule replaces rule r.ID's definition and bumps its version, so the
// replica evaluating it reloads it. Disabling a rule resolves its open alerts.
// An unknown id gives ErrNotFound, a taken name ErrConflict.
func (s *Store) UpdateAlertRule(ctx context.Context, r AlertRuleRecord, now time.Time) (AlertRuleRecord, error) {
	var out AlertRuleRecord
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = updateRuleTx(ctx, tx, r, now)
		return err
	})
	return out, err
}

func updateRuleTx(ctx context.Context, tx pgx.Tx, r AlertRuleRecord, now time.Time) (AlertRuleRecord, error) {
	out, err := scanRule(tx.QueryRow(ctx, updateRule, r.ID, r.Name, string(r.Spec), r.Interval.Milliseconds(), r.Enabled, r.Owner, now))
	switch {
	case isNoRows(err):
		return AlertRuleRecord{}, fmt.Errorf("alert rule %d: %w", r.ID, ErrNotFound)
	case isUniqueViolation(err):
		return AlertRuleRecord{}, fmt.Errorf("alert rule %q: %w", r.Name, ErrConflict)
	case err != nil:
		return AlertRuleRecord{}, fmt.Errorf("update alert rule %d: %w", r.ID, err)
	}
	if !out.Enabled {
		if err := resolveOpenAlerts(ctx, tx, out.ID, now); err != nil {
			return AlertRuleRecord{}, err
		}
	}
	return out, nil
}

const deleteRule = `DELETE FROM alert_rules WHERE id = $1`

// DeleteAlertRule removes a rule; its open alerts are resolved first (and their
// rows kept, so the resolved message is still sent). An unknown id gives ErrNotFound.
func (s *Store) DeleteAlertRule(ctx context.Context, id int64, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the rule first: an evaluation commits under a share lock on it.
		var locked int64
		err := tx.QueryRow(ctx, `SELECT id FROM alert_rules WHERE id = $1 FOR UPDATE`, id).Scan(&locked)
		if isNoRows(err) {
			return fmt.Errorf("alert rule %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("delete alert rule %d: %w", id, err)
		}
		return deleteRuleTx(ctx, tx, id, now)
	})
}

// deleteRuleTx deletes rule id, locked by the caller, resolving its open alerts.
func deleteRuleTx(ctx context.Context, tx pgx.Tx, id int64, now time.Time) error {
	if err := resolveOpenAlerts(ctx, tx, id, now); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, deleteRule, id); err != nil {
		return fmt.Errorf("delete alert rule %d: %w", id, err)
	}
	return nil
}

// resolveOpen closes a rule's open instances: firing and nodata ones resolve,
// pending ones go back to inactive; each change is recorded and announced.
const resolveOpen = `
WITH changed AS (
    UPDATE alert_instances i SET
        state = CASE WHEN i.state = 'pending' THEN 'inactive' ELSE 'resolved' END,
        ends_at = CASE WHEN i.state = 'pending' THEN i.ends_at ELSE $2 END,
        active_at = NULL, updated_at = $2
    FROM (SELECT fingerprint, state AS old_state FROM alert_instances
          WHERE rule_id = $1 AND state IN ('pending', 'firing', 'nodata') FOR UPDATE) o
    WHERE i.rule_id = $1 AND i.fingerprint = o.fingerprint
    RETURNING i.rule_id, i.rule_name, i.fingerprint, i.labels, o.old_state, i.state, i.severity, i.value, i.threshold
)
INSERT INTO alert_history (rule_id, rule_name, fingerprint, labels, from_state, to_state, severity, value, threshold, at)
SELECT rule_id, rule_name, fingerprint, labels, old_state, state, severity, value, threshold, $2 FROM changed
RETURNING id, rule_id, fingerprint, from_state, to_state, severity, at`

func resolveOpenAlerts(ctx context.Context, tx pgx.Tx, ruleID int64, now time.Time) error {
	rows, err := tx.Query(ctx, resolveOpen, ruleID, now)
	if err != nil {
		return fmt.Errorf("resolve alerts of rule %d: %w", ruleID, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AlertEvent, error) {
		var ev AlertEvent
		err := row.Scan(&ev.HistoryID, &ev.RuleID, &ev.Fingerprint, &ev.From, &ev.State, &ev.Severity, &ev.At)
		return ev, err
	})
	if err != nil {
		return fmt.Errorf("resolve alerts of rule %d: %w", ruleID, err)
	}
	return notifyEvents(ctx, tx, events)
}

// AlertRule returns one rule; ErrNotFound when there is none.
func (s *Store) AlertRule(ctx context.Context, id int64) (AlertRuleRecord, error) {
	r, err := scanRule(s.pool.QueryRow(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE id = $1`, id))
	if isNoRows(err) {
		return AlertRuleRecord{}, fmt.Errorf("alert rule %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return AlertRuleRecord{}, fmt.Errorf("read alert rule %d: %w", id, err)
	}
	return r, nil
}

// AlertRules lists every rule, by name.
func (s *Store) AlertRules(ctx context.Context) ([]AlertRuleRecord, error) {
	return s.queryRules(ctx, `SELECT `+ruleColumns+` FROM alert_rules ORDER BY name`)
}

// AlertRulesByID returns the rules among ids that exist.
func (s *Store) AlertRulesByID(ctx context.Context, ids []int64) ([]AlertRuleRecord, error) {
	return s.queryRules(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE id = ANY($1) ORDER BY id`, ids)
}

func (s *Store) queryRules(ctx context.Context, sql string, args ...any) ([]AlertRuleRecord, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AlertRuleRecord, error) { return scanRule(row) })
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	return out, nil
}

// ImportResult counts what ImportAlertRules did.
type ImportResult struct {
	Created, Updated, Unchanged, Deleted int
}

// ImportAlertRules creates or updates rules by name, in one transaction: all or
// none. A rule whose spec, interval, enabled flag and owner are unchanged keeps
// its version. With prune, the rules whose name is not among rules are deleted
// as DeleteAlertRule does (their open alerts resolved); without, they are kept.
func (s *Store) ImportAlertRules(ctx context.Context, rules []AlertRuleRecord, now time.Time, prune bool) (ImportResult, error) {
	var res ImportResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = ImportResult{}
		names := make([]string, len(rules))
		for i, r := range rules {
			names[i] = r.Name
		}
		if prune {
			n, err := pruneRules(ctx, tx, names, now)
			if err != nil {
				return err
			}
			res.Deleted = n
		}
		for _, r := range rules {
			cur, err := scanRule(tx.QueryRow(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE name = $1 FOR UPDATE`, r.Name))
			if isNoRows(err) {
				if _, err := createRule(ctx, tx, r, now); err != nil {
					return err
				}
				res.Created++
				continue
			}
			if err != nil {
				return fmt.Errorf("import alert rule %q: %w", r.Name, err)
			}
			if sameRule(cur, r) {
				res.Unchanged++
				continue
			}
			r.ID = cur.ID
			if _, err := updateRuleTx(ctx, tx, r, now); err != nil {
				return err
			}
			res.Updated++
		}
		return nil
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// pruneRules deletes the rules not named in keep and returns how many.
func pruneRules(ctx context.Context, tx pgx.Tx, keep []string, now time.Time) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM alert_rules WHERE name <> ALL($1) ORDER BY id FOR UPDATE`, keep)
	if err != nil {
		return 0, fmt.Errorf("prune alert rules: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("prune alert rules: %w", err)
	}
	for _, id := range ids {
		if err := deleteRuleTx(ctx, tx, id, now); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func sameRule(a, b AlertRuleRecord) bool {
	if a.Interval != b.Interval || a.Enabled != b.Enabled || a.Owner != b.Owner {
		return false
	}
	var x, y any
	if json.Unmarshal(a.Spec, &x) != nil || json.Unmarshal(b.Spec, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}

// CheckTagRegexes compiles the regular expressions of filters in PostgreSQL, whose
// dialect they use, so a rule is refused when it is saved rather than failing at
// every evaluation. The error wraps ErrBadQuery and names the filter.
func (s *Store) CheckTagRegexes(ctx context.Context, filters []TagFilter) error {
	return s.checkRegexes(ctx, filters)
}
