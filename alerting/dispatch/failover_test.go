package dispatch_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// replica is one dispatcher on its own connection pool, as on its own server.
type replica struct {
	name   string
	st     *store.Store
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, url, name string) *replica {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, st: st, cancel: cancel, done: make(chan error, 1)}
	d := dispatch.New(dispatch.Deps{Alerts: st, Settings: st, Log: st, Leader: st},
		dispatch.Config{Holder: name, Tick: 50 * time.Millisecond, Retry: dispatch.RetryPolicy{Attempts: 1, Timeout: 20 * time.Second}})
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
	r.st.Close()
}

// leader is the holder of the current dispatcher term.
func leader(t *testing.T, st *store.Store) string {
	t.Helper()
	var holder string
	err := st.Pool().QueryRow(context.Background(), `SELECT holder FROM notify_leader`).Scan(&holder)
	if err != nil {
		return ""
	}
	return holder
}

// killLockSession terminates the database session holding the dispatcher lock,
// as when its replica's machine dies: the lock is gone at once. Only in the
// test's database: other packages' servers hold the same lock in theirs.
func killLockSession(t *testing.T, st *store.Store) {
	t.Helper()
	var n int
	err := st.Pool().QueryRow(context.Background(), `
SELECT count(pg_terminate_backend(pid)) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND classid::bigint = $1 AND objid::bigint = $2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, 0x616d6173, 0x6e746679).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the lock session: %d sessions, %v", n, err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// putAlert writes an instance the way the engine's CommitEvaluations leaves it
// and announces it on amas_alerts, so the dispatcher reads it through
// store.ActiveAlerts.
func putAlert(t *testing.T, st *store.Store, state alerting.State, startsAt time.Time, kv ...string) {
	t.Helper()
	l := alerting.Labels{}
	for i := 0; i < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	labels, _ := json.Marshal(l)
	var endsAt *time.Time
	if state == alerting.StateResolved {
		now := time.Now()
		endsAt = &now
	}
	ctx := context.Background()
	_, err := st.Pool().Exec(ctx, `
INSERT INTO alert_instances (rule_id, fingerprint, rule_name, labels, annotations, state, severity, value, threshold, active_at, starts_at, ends_at, updated_at)
VALUES (1, $1, $2, $3, '{"summary":"test"}', $4, 'critical', 1, 0, $5, $5, $6, now())
ON CONFLICT (rule_id, fingerprint) DO UPDATE SET state = EXCLUDED.state, ends_at = EXCLUDED.ends_at, updated_at = now()`,
		l.Fingerprint(), l["alertname"], labels, string(state), startsAt, endsAt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `SELECT pg_notify($1, '{}')`, store.AlertsChannel); err != nil {
		t.Fatal(err)
	}
}

// countingHook counts requests as they arrive; when hold is set it keeps each
// request open until released.
type countingHook struct {
	srv      *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	bodies   []payload
	hold     chan struct{}
}

func newCountingHook(t *testing.T, hold bool) *countingHook {
	h := &countingHook{}
	if hold {
		h.hold = make(chan struct{})
	}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p payload
		_ = json.Unmarshal(b, &p)
		h.mu.Lock()
		h.bodies = append(h.bodies, p)
		h.mu.Unlock()
		h.requests.Add(1)
		if h.hold != nil {
			select {
			case <-h.hold:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func setupFailover(t *testing.T, h *countingHook) (*store.Store, string) {
	t.Helper()
	st, db := storetest.Migrated(t)
	ctx := context.Background()
	ch, err := st.CreateChannel(ctx, notifiers.Channel{Name: "ops", Type: "webhook", Secrets: map[string]string{"url": h.srv.URL}, SendResolved: true})
	if err != nil {
		t.Fatal(err)
	}
	zero, interval := time.Duration(0), 200*time.Millisecond
	if err := st.SetRoutes(ctx, dispatch.Route{Channels: []int64{ch.ID}, GroupBy: []string{"alertname"}, GroupWait: &zero, GroupInterval: &interval}, "test"); err != nil {
		t.Fatal(err)
	}
	return st, db.URL
}

func TestFailoverNoDuplicates(t *testing.T) {
	h := newCountingHook(t, false)
	st, url := setupFailover(t, h)
	a := startReplica(t, url, "a")
	eventually(t, "replica a to lead", func() bool { return leader(t, st) == "a" })
	b := startReplica(t, url, "b")

	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	putAlert(t, st, alerting.StateFiring, start, "alertname", "Down", "host", "x")
	eventually(t, "the first message", func() bool { return h.requests.Load() == 1 })

	killLockSession(t, st)
	a.stop()
	eventually(t, "replica b to take over", func() bool { return leader(t, st) == "b" })
	time.Sleep(time.Second) // many of b's rounds and group intervals
	if n := h.requests.Load(); n != 1 {
		t.Fatalf("after failover the receiver got %d messages, want still 1: the new leader resent", n)
	}

	putAlert(t, st, alerting.StateFiring, start, "alertname", "Down", "host", "y")
	eventually(t, "the new leader's message", func() bool { return h.requests.Load() == 2 })
	time.Sleep(500 * time.Millisecond)
	if n := h.requests.Load(); n != 2 {
		t.Errorf("receiver got %d messages, want 2", n)
	}
	h.mu.Lock()
	if got := len(h.bodies[1].Alerts); got != 2 {
		t.Errorf("second message has %d alerts, want x and y", got)
	}
	h.mu.Unlock()
	b.stop()
}

func TestFailoverDuringSend(t *testing.T) {
	h := newCountingHook(t, true)
	st, url := setupFailover(t, h)
	a := startReplica(t, url, "a")
	eventually(t, "replica a to lead", func() bool { return leader(t, st) == "a" })
	b := startReplica(t, url, "b")

	putAlert(t, st, alerting.StateFiring, time.Now().Add(-time.Minute), "alertname", "Down", "host", "x")
	eventually(t, "a's send to reach the receiver", func() bool { return h.requests.Load() == 1 })
	// a dies while its message is in flight.
	killLockSession(t, st)
	eventually(t, "replica b to take over", func() bool { return leader(t, st) == "b" })
	time.Sleep(time.Second)
	close(h.hold)
	if n := h.requests.Load(); n != 1 {
		t.Fatalf("the receiver got %d requests, want 1: b resent what a was sending", n)
	}
	a.stop()
	b.stop()
	log, err := st.Notifications(context.Background(), store.NotificationFilter{})
	if err != nil || len(log) != 1 || log[0].Term != 1 {
		t.Errorf("notification log = %+v, %v; want one entry of term 1", log, err)
	}
}
