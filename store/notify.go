package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting/dispatch"
)

// NotifySettings reads everything a dispatch round needs besides the alerts:
// the routing tree (the default one when nobody has saved one), the channels,
// the silences not expired at now, the inhibition rules and the
// acknowledgements.
func (s *Store) NotifySettings(ctx context.Context, now time.Time) (dispatch.Settings, error) {
	var st dispatch.Settings
	var err error
	if st.Routes, _, _, err = s.Routes(ctx); err != nil {
		return st, err
	}
	if st.Channels, err = s.Channels(ctx); err != nil {
		return st, err
	}
	if st.Silences, err = s.Silences(ctx, now); err != nil {
		return st, err
	}
	if st.InhibitRules, err = s.InhibitRules(ctx); err != nil {
		return st, err
	}
	if st.Acks, err = s.Acks(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// Acks maps each acknowledged fingerprint to the starts_at of its acknowledged
// firing episodes.
func (s *Store) Acks(ctx context.Context) (map[string][]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT fingerprint, starts_at FROM alert_acks`)
	if err != nil {
		return nil, fmt.Errorf("read acknowledgements: %w", err)
	}
	defer rows.Close()
	out := map[string][]time.Time{}
	for rows.Next() {
		var fp string
		var at time.Time
		if err := rows.Scan(&fp, &at); err != nil {
			return nil, fmt.Errorf("read acknowledgements: %w", err)
		}
		out[fp] = append(out[fp], at)
	}
	return out, rows.Err()
}

// Routes reads the routing tree, who saved it and when; the default tree
// (zero time) when none was saved.
func (s *Store) Routes(ctx context.Context) (dispatch.Route, string, time.Time, error) {
	var tree []byte
	var by string
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT tree, updated_by, updated_at FROM notify_routes WHERE id = 1`).Scan(&tree, &by, &at)
	if isNoRows(err) {
		return dispatch.DefaultRoute(), "", time.Time{}, nil
	}
	if err != nil {
		return dispatch.Route{}, "", time.Time{}, fmt.Errorf("read routing tree: %w", err)
	}
	var r dispatch.Route
	if err := json.Unmarshal(tree, &r); err != nil {
		return dispatch.Route{}, "", time.Time{}, fmt.Errorf("decode routing tree: %w", err)
	}
	return r, by, at, nil
}

// SetRoutes saves the routing tree (checked by the caller with dispatch.Compile).
func (s *Store) SetRoutes(ctx context.Context, r dispatch.Route, by string) error {
	tree, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode routing tree: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
INSERT INTO notify_routes (id, tree, updated_by, updated_at) VALUES (1, $1, $2, clock_timestamp())
ON CONFLICT (id) DO UPDATE SET tree = EXCLUDED.tree, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`, string(tree), by)
	if err != nil {
		return fmt.Errorf("save routing tree: %w", err)
	}
	return nil
}

const notificationColumns = `id, group_key, COALESCE(channel_id, 0), channel_name, channel_type, status, alerts,
    firing, resolved, attempts, error, term, test, created_at, finished_at`

func scanNotification(row pgx.Row) (dispatch.LogEntry, error) {
	var e dispatch.LogEntry
	var alerts []byte
	var finished *time.Time
	if err := row.Scan(&e.ID, &e.GroupKey, &e.ChannelID, &e.ChannelName, &e.ChannelType, &e.Status, &alerts,
		&e.Firing, &e.Resolved, &e.Attempts, &e.Error, &e.Term, &e.Test, &e.CreatedAt, &finished); err != nil {
		return dispatch.LogEntry{}, err
	}
	if finished != nil {
		e.FinishedAt = *finished
	}
	if err := json.Unmarshal(alerts, &e.Alerts); err != nil {
		return dispatch.LogEntry{}, fmt.Errorf("notification %d: alerts: %w", e.ID, err)
	}
	return e, nil
}

// lastNotifications reads the newest non-failed, non-test notification of each
// (group key, channel) pair asked about.
const lastNotifications = `
SELECT DISTINCT ON (n.group_key, n.channel_id) ` + notificationColumns + `
FROM notifications n
JOIN unnest($1::text[], $2::bigint[]) AS k(gk, cid) ON n.group_key = k.gk AND n.channel_id = k.cid
WHERE n.status <> 'failed' AND NOT n.test
ORDER BY n.group_key, n.channel_id, n.id DESC`

// LastNotifications returns what each channel was last told about each group:
// the newest notification that did not fail (test messages aside). A message a
// previous leader was still sending counts as sent.
func (s *Store) LastNotifications(ctx context.Context, keys []dispatch.LogKey) (map[dispatch.LogKey]dispatch.LogEntry, error) {
	groups := make([]string, len(keys))
	channels := make([]int64, len(keys))
	for i, k := range keys {
		groups[i], channels[i] = k.GroupKey, k.ChannelID
	}
	rows, err := s.pool.Query(ctx, lastNotifications, groups, channels)
	if err != nil {
		return nil, fmt.Errorf("read notification log: %w", err)
	}
	defer rows.Close()
	out := make(map[dispatch.LogKey]dispatch.LogEntry, len(keys))
	for rows.Next() {
		e, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("read notification log: %w", err)
		}
		out[dispatch.LogKey{GroupKey: e.GroupKey, ChannelID: e.ChannelID}] = e
	}
	return out, rows.Err()
}

// beginNotification inserts the entry only while term is the leader's term. The
// leader row is share-locked, so a replica taking over (which updates it) waits
// for an insert under the old term to commit, or makes it find no row.
const beginNotification = `
WITH leader AS (SELECT 1 FROM notify_leader WHERE id = 1 AND term = $10 FOR SHARE)
INSERT INTO notifications (group_key, channel_id, channel_name, channel_type, status, alerts, firing, resolved,
    error, term, test, created_at, finished_at)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, false, $11, CASE WHEN $5 = 'skipped' THEN $11::timestamptz END
FROM leader RETURNING id`

const beginTestNotification = `
INSERT INTO notifications (group_key, channel_id, channel_name, channel_type, status, alerts, firing, resolved,
    error, term, test, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, $11) RETURNING id`

// BeginNotification logs a notification before it is sent. Unless it is a test
// message, it is logged only under the current leadership term; otherwise
// dispatch.ErrNotLeader.
func (s *Store) BeginNotification(ctx context.Context, term int64, e dispatch.LogEntry) (int64, error) {
	alerts, err := json.Marshal(e.Alerts)
	if err != nil {
		return 0, fmt.Errorf("encode notification alerts: %w", err)
	}
	if e.Alerts == nil {
		alerts = []byte("[]")
	}
	var channelID *int64
	if e.ChannelID != 0 {
		channelID = &e.ChannelID
	}
	q := beginNotification
	if e.Test {
		q = beginTestNotification
	}
	var id int64
	err = s.pool.QueryRow(ctx, q, e.GroupKey, channelID, e.ChannelName, e.ChannelType, string(e.Status), string(alerts),
		e.Firing, e.Resolved, e.Error, term, e.CreatedAt).Scan(&id)
	if isNoRows(err) {
		return 0, dispatch.ErrNotLeader
	}
	if err != nil {
		return 0, fmt.Errorf("log notification of %s: %w", e.GroupKey, err)
	}
	return id, nil
}

// recordAttempt inserts the attempt and updates its notification in one
// statement (one round trip, one commit). Recording an attempt again only
// updates the status (a retry given up at shutdown).
const recordAttempt = `
WITH attempt AS (
    INSERT INTO notification_attempts (notification_id, attempt, at, duration_ms, error, retryable)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (notification_id, attempt) DO NOTHING
)
UPDATE notifications SET status = $7, attempts = $2, error = $5,
    finished_at = CASE WHEN $8 THEN $9::timestamptz END
WHERE id = $1`

// RecordAttempt stores one delivery attempt and the notification's status after it.
func (s *Store) RecordAttempt(ctx context.Context, id int64, a dispatch.Attempt, status dispatch.Status) error {
	finished := status == dispatch.StatusSent || status == dispatch.StatusFailed
	_, err := s.pool.Exec(ctx, recordAttempt, id, a.N, a.At, float64(a.Duration)/float64(time.Millisecond), a.Error, a.Retryable,
		string(status), finished, a.At.Add(a.Duration))
	if err != nil {
		return fmt.Errorf("record attempt %d of notification %d: %w", a.N, id, err)
	}
	return nil
}

// NotificationFilter selects notifications; zero fields select all.
type NotificationFilter struct {
	ChannelID int64
	Status    dispatch.Status
	GroupKey  string // substring
	Since     time.Time
	Until     time.Time
	Limit     int // default 100
}

// Notification is a logged notification with its attempts.
type Notification struct {
	dispatch.LogEntry
	AttemptList []dispatch.Attempt
}

// Notifications lists logged notifications, newest first, with their attempts.
func (s *Store) Notifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.ChannelID != 0 {
		add("channel_id = $%d", f.ChannelID)
	}
	if f.Status != "" {
		add("status = $%d", string(f.Status))
	}
	if f.GroupKey != "" {
		add("strpos(group_key, $%d) > 0", f.GroupKey)
	}
	if !f.Since.IsZero() {
		add("created_at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("created_at < $%d", f.Until)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	var out []Notification
	index := map[int64]int{}
	var ids []int64
	for rows.Next() {
		e, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		index[e.ID] = len(out)
		ids = append(ids, e.ID)
		out = append(out, Notification{LogEntry: e})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	rows.Close()
	if len(ids) == 0 {
		return out, nil
	}
	arows, err := s.pool.Query(ctx, `SELECT notification_id, attempt, at, duration_ms, error, retryable
FROM notification_attempts WHERE notification_id = ANY($1) ORDER BY notification_id, attempt`, ids)
	if err != nil {
		return nil, fmt.Errorf("list notification attempts: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var id int64
		var a dispatch.Attempt
		var ms float64
		if err := arows.Scan(&id, &a.N, &a.At, &ms, &a.Error, &a.Retryable); err != nil {
			return nil, fmt.Errorf("list notification attempts: %w", err)
		}
		a.Duration = time.Duration(ms * float64(time.Millisecond))
		n := &out[index[id]]
		n.AttemptList = append(n.AttemptList, a)
	}
	return out, arows.Err()
}

// dispatchLockKey is the session advisory lock that elects the dispatching
// replica ("amasntfy").
const dispatchLockKey int64 = 0x616d61736e746679

// coalesceNotifies is how long a woken lease keeps reading notifications, so a
// burst of state changes costs one round.
const coalesceNotifies = 20 * time.Millisecond

// dispatchLease is the dispatcher's leadership: the advisory lock on a
// dedicated connection, which also LISTENs for the engine's changes.
type dispatchLease struct {
	conn *pgx.Conn
	term int64
}

// TryLeadDispatch takes the dispatcher lock if it is free, bumps the leadership
// term and starts listening on AlertsChannel; nil when another replica leads.
// The lock lives and dies with the lease's own connection.
func (s *Store) TryLeadDispatch(ctx context.Context, holder string) (dispatch.Lease, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect for the dispatcher lock: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, dispatchLockKey).Scan(&locked); err != nil || !locked {
		_ = conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("try the dispatcher lock: %w", err)
		}
		return nil, nil
	}
	var term int64
	err = conn.QueryRow(ctx, `
INSERT INTO notify_leader (id, term, holder, since) VALUES (1, 1, $1, clock_timestamp())
ON CONFLICT (id) DO UPDATE SET term = notify_leader.term + 1, holder = EXCLUDED.holder, since = EXCLUDED.since
RETURNING term`, holder).Scan(&term)
	if err == nil {
		_, err = conn.Exec(ctx, "LISTEN "+AlertsChannel)
	}
	if err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("start dispatcher term: %w", err)
	}
	return &dispatchLease{conn: conn, term: term}, nil
}

func (l *dispatchLease) Term() int64 { return l.term }

// Wait returns after d or on a notification (and the ones right behind it).
func (l *dispatchLease) Wait(ctx context.Context, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := l.conn.WaitForNotification(wctx)
	for err == nil {
		cctx, ccancel := context.WithTimeout(ctx, coalesceNotifies)
		_, err = l.conn.WaitForNotification(cctx)
		ccancel()
	}
	if ctx.Err() != nil {
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) && !pgTimeout(err) {
		return fmt.Errorf("dispatcher lock connection: %w", err)
	}
	// A deadline says nothing of the connection; the lock is only as alive as it.
	if err := l.conn.Ping(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("dispatcher lock connection: %w", err)
	}
	return nil
}

// pgTimeout reports pgconn's timeout error (it wraps the deadline).
func pgTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Release unlocks by closing the connection: the session lock goes with it.
func (l *dispatchLease) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}
