package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// HeldRule is a rule whose evaluation lease a replica holds.
type HeldRule struct {
	RuleID     int64
	Version    int64
	NextEvalAt time.Time
}

// A lease lasts the rule's interval, but at least minTTL (given in milliseconds),
// from the renewal: a replica renews every tick, and when it dies its rules are
// free one interval later, so another replica evaluates them within two.
const leaseUntil = `$2::timestamptz + make_interval(secs => greatest(r.interval_ms, $3::bigint) / 1000.0)`

const upsertReplica = `
INSERT INTO alert_replicas (id, heartbeat_at) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at`

// countShare also forgets the replicas not alive since $1 (crashed ones never
// leave): one that comes back is recorded again by its next heartbeat.
const countShare = `
WITH gone AS (DELETE FROM alert_replicas WHERE heartbeat_at < $1)
SELECT (SELECT count(*) FROM alert_rules WHERE enabled),
       (SELECT count(*) FROM alert_replicas WHERE heartbeat_at >= $1)`

// AlertReplicaHeartbeat records that replica id is alive at now, and returns the
// enabled rules and the replicas alive since aliveSince: a replica's fair share of
// rules is their quotient, rounded up. Replicas not alive since then are deleted.
func (s *Store) AlertReplicaHeartbeat(ctx context.Context, id string, now, aliveSince time.Time) (rules, replicas int, err error) {
	if _, err := s.pool.Exec(ctx, upsertReplica, id, now); err != nil {
		return 0, 0, fmt.Errorf("alert replica heartbeat: %w", err)
	}
	if err := s.pool.QueryRow(ctx, countShare, aliveSince).Scan(&rules, &replicas); err != nil {
		return 0, 0, fmt.Errorf("alert replica heartbeat: %w", err)
	}
	return rules, replicas, nil
}

// renewLeases extends the held leases past half their life (so a lease row is
// written about twice per interval, not on every tick) and returns every held
// lease; both parts read the same snapshot.
const renewLeases = `
WITH renewed AS (
    UPDATE alert_rule_leases l SET lease_until = ` + leaseUntil + `
    FROM alert_rules r
    WHERE r.id = l.rule_id AND l.owner = $1 AND l.lease_until >= $2 AND r.enabled
      AND l.lease_until < $2::timestamptz + make_interval(secs => greatest(r.interval_ms, $3::bigint) / 2000.0)
    RETURNING l.rule_id)
SELECT l.rule_id, r.version, l.next_eval_at
FROM alert_rule_leases l JOIN alert_rules r ON r.id = l.rule_id
WHERE l.owner = $1 AND l.lease_until >= $2 AND r.enabled`

// RenewAlertLeases returns every unexpired lease owner holds on an enabled rule,
// extending those past half their life; a rule it held that is missing was lost,
// disabled or deleted.
func (s *Store) RenewAlertLeases(ctx context.Context, owner string, now time.Time, minTTL time.Duration) ([]HeldRule, error) {
	return s.heldRules(ctx, "renew rule leases", renewLeases, owner, now, minTTL.Milliseconds())
}

const claimLeases = `
WITH free AS (
    SELECT l.rule_id FROM alert_rule_leases l JOIN alert_rules r ON r.id = l.rule_id
    WHERE r.enabled AND (l.owner IS NULL OR l.lease_until < $2)
    ORDER BY l.next_eval_at, l.rule_id
    LIMIT $4
    FOR UPDATE OF l SKIP LOCKED)
UPDATE alert_rule_leases l SET owner = $1, lease_until = ` + leaseUntil + `
FROM free, alert_rules r
WHERE l.rule_id = free.rule_id AND r.id = l.rule_id
RETURNING l.rule_id, r.version, l.next_eval_at`

// ClaimAlertLeases takes up to n leases that are free or expired at now, those
// due soonest first. Rows another replica is claiming are skipped, not waited for.
func (s *Store) ClaimAlertLeases(ctx context.Context, owner string, now time.Time, minTTL time.Duration, n int) ([]HeldRule, error) {
	if n <= 0 {
		return nil, nil
	}
	return s.heldRules(ctx, "claim rule leases", claimLeases, owner, now, minTTL.Milliseconds(), n)
}

func (s *Store) heldRules(ctx context.Context, what, sql string, args ...any) ([]HeldRule, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	held, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (HeldRule, error) {
		var h HeldRule
		err := row.Scan(&h.RuleID, &h.Version, &h.NextEvalAt)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return held, nil
}

const releaseLeases = `
UPDATE alert_rule_leases SET owner = NULL, lease_until = 'epoch'
WHERE owner = $1 AND rule_id = ANY($2)`

// ReleaseAlertLeases gives up owner's leases on ruleIDs, for another replica to
// take at once.
func (s *Store) ReleaseAlertLeases(ctx context.Context, owner string, ruleIDs []int64) error {
	if _, err := s.pool.Exec(ctx, releaseLeases, owner, ruleIDs); err != nil {
		return fmt.Errorf("release rule leases: %w", err)
	}
	return nil
}

const (
	releaseAllLeases = `UPDATE alert_rule_leases SET owner = NULL, lease_until = 'epoch' WHERE owner = $1`
	deleteReplica    = `DELETE FROM alert_replicas WHERE id = $1`
)

// LeaveAlertReplicas releases every lease of replica id and forgets it: what a
// replica that stops cleanly does, so its rules move on without waiting for expiry.
func (s *Store) LeaveAlertReplicas(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, releaseAllLeases, id); err != nil {
		return fmt.Errorf("release rule leases: %w", err)
	}
	if _, err := s.pool.Exec(ctx, deleteReplica, id); err != nil {
		return fmt.Errorf("forget alert replica: %w", err)
	}
	return nil
}

// RuleHealth is how a rule's evaluation stands.
type RuleHealth struct {
	RuleID     int64
	Owner      string    // the replica holding the lease; empty when none does
	LeaseUntil time.Time // when the lease runs out
	NextEvalAt time.Time
	LastEvalAt time.Time // zero: never evaluated
	LastError  string    // why the last evaluation failed; empty when it did not
}

const selectRuleHealth = `
SELECT rule_id, coalesce(owner, ''), lease_until, next_eval_at, last_eval_at, last_error
FROM alert_rule_leases WHERE rule_id = ANY($1)`

// AlertRuleHealth returns the evaluation state of the given rules, by rule id.
func (s *Store) AlertRuleHealth(ctx context.Context, ruleIDs []int64) (map[int64]RuleHealth, error) {
	rows, err := s.pool.Query(ctx, selectRuleHealth, ruleIDs)
	if err != nil {
		return nil, fmt.Errorf("read rule health: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RuleHealth, error) {
		var (
			h    RuleHealth
			last *time.Time
		)
		err := row.Scan(&h.RuleID, &h.Owner, &h.LeaseUntil, &h.NextEvalAt, &last, &h.LastError)
		if last != nil {
			h.LastEvalAt = *last
		}
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("read rule health: %w", err)
	}
	out := make(map[int64]RuleHealth, len(list))
	for _, h := range list {
		out[h.RuleID] = h
	}
	return out, nil
}
