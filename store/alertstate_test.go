package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func createTestRule(t *testing.T, st *store.Store, name string) store.AlertRuleRecord {
	t.Helper()
	r, err := st.CreateAlertRule(context.Background(), store.AlertRuleRecord{
		Name: name, Spec: json.RawMessage(`{"kind":"threshold"}`), Interval: 15 * time.Second, Enabled: true, Owner: "ops",
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func firing(rule store.AlertRuleRecord, host string, at time.Time) store.AlertInstance {
	labels := alerting.Labels{"alertname": rule.Name, "host": host, "severity": "critical"}
	return store.AlertInstance{
		Alert: alerting.Alert{
			RuleID: rule.ID, RuleName: rule.Name, Fingerprint: labels.Fingerprint(), Labels: labels,
			Annotations: map[string]string{"summary": "load on " + host},
			State:       alerting.StateFiring, Severity: alerting.SeverityCritical, Value: 93, Threshold: 90,
			StartsAt: at, UpdatedAt: at,
		},
		HasValue: true, ActiveAt: at,
	}
}

// TestCommitNotifies checks the NOTIFY of a committed change on a second
// connection, which the one-connection test server (PGlite) cannot give.
func TestCommitNotifies(t *testing.T) {
	if os.Getenv("AMAS_TEST_SINGLE_DB") == "1" {
		t.Skip("needs a second connection to LISTEN on")
	}
	st, db := storetest.Migrated(t)
	ctx := context.Background()
	rule := createTestRule(t, st, "high load")
	listen, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(ctx)
	if _, err := listen.Exec(ctx, "LISTEN "+store.AlertsChannel); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ClaimAlertLeases(ctx, "a", t0, time.Second, 10); err != nil {
		t.Fatal(err)
	}
	in := firing(rule, "db-1", t0)
	_, events, err := st.CommitEvaluations(ctx, "a", t0, []store.RuleEvaluation{{
		RuleID: rule.ID, RuleVersion: 1, NextEvalAt: t0.Add(15 * time.Second),
		Instances: []store.AlertInstance{in},
		Changes:   []store.StateChange{{Fingerprint: in.Fingerprint, From: alerting.StateInactive}},
	}})
	if err != nil || len(events) != 1 {
		t.Fatalf("commit = %v, %v", events, err)
	}
	n, err := listen.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ev store.AlertEvent
	if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.RuleID != rule.ID || ev.Fingerprint != in.Fingerprint || ev.State != alerting.StateFiring || ev.From != alerting.StateInactive ||
		ev.HistoryID != events[0].HistoryID || len(n.Payload) >= 8000 {
		t.Errorf("notified %s, want rule %d %s inactive -> firing", n.Payload, rule.ID, in.Fingerprint)
	}
}

func TestAlertLeasesAndEvaluations(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	rule := createTestRule(t, st, "high load")

	held, err := st.ClaimAlertLeases(ctx, "a", t0, time.Second, 10)
	if err != nil || len(held) != 1 || held[0].RuleID != rule.ID || held[0].Version != 1 {
		t.Fatalf("claim by a = %+v, %v; want rule %d version 1", held, err, rule.ID)
	}
	if other, err := st.ClaimAlertLeases(ctx, "b", t0.Add(10*time.Second), time.Second, 10); err != nil || len(other) != 0 {
		t.Fatalf("claim by b while a's lease runs = %+v, %v; want none", other, err)
	}

	in := firing(rule, "db-1", t0)
	eval := store.RuleEvaluation{
		RuleID: rule.ID, RuleVersion: 1, NextEvalAt: t0.Add(15 * time.Second),
		Instances: []store.AlertInstance{in},
		Changes:   []store.StateChange{{Fingerprint: in.Fingerprint, From: alerting.StateInactive}},
	}
	if written, _, err := st.CommitEvaluations(ctx, "b", t0, []store.RuleEvaluation{eval}); err != nil || len(written) != 0 {
		t.Fatalf("commit by b, which holds no lease = %v, %v; want nothing written", written, err)
	}
	written, events, err := st.CommitEvaluations(ctx, "a", t0, []store.RuleEvaluation{eval})
	if err != nil || len(written) != 1 || len(events) != 1 {
		t.Fatalf("commit by a = %v, %v, %v", written, events, err)
	}
	if ev := events[0]; ev.RuleID != rule.ID || ev.Fingerprint != in.Fingerprint || ev.State != alerting.StateFiring || ev.From != alerting.StateInactive {
		t.Errorf("event %+v, want rule %d %s inactive -> firing", ev, rule.ID, in.Fingerprint)
	}

	active, err := st.ActiveAlerts(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].Labels["host"] != "db-1" || active[0].Value != 93 || active[0].State != alerting.StateFiring ||
		active[0].Annotations["summary"] != "load on db-1" || !active[0].StartsAt.Equal(t0) {
		t.Fatalf("ActiveAlerts = %+v", active)
	}

	// A lease is extended only past half its life, but reported held on every renewal.
	leaseUntil := func() time.Time {
		var until time.Time
		if err := st.Pool().QueryRow(ctx, `SELECT lease_until FROM alert_rule_leases WHERE rule_id = $1`, rule.ID).Scan(&until); err != nil {
			t.Fatal(err)
		}
		return until
	}
	if renewed, err := st.RenewAlertLeases(ctx, "a", t0.Add(5*time.Second), time.Second); err != nil || len(renewed) != 1 {
		t.Fatalf("early renew by a = %+v, %v", renewed, err)
	}
	if got := leaseUntil(); !got.Equal(t0.Add(15 * time.Second)) {
		t.Errorf("after an early renewal the lease runs until %s, want unchanged %s", got, t0.Add(15*time.Second))
	}
	// The lease expires one interval after its last renewal: b takes over.
	if renewed, err := st.RenewAlertLeases(ctx, "a", t0.Add(10*time.Second), time.Second); err != nil || len(renewed) != 1 {
		t.Fatalf("renew by a = %+v, %v", renewed, err)
	}
	if got := leaseUntil(); !got.Equal(t0.Add(25 * time.Second)) {
		t.Errorf("after a renewal past half life the lease runs until %s, want %s", got, t0.Add(25*time.Second))
	}
	held, err = st.ClaimAlertLeases(ctx, "b", t0.Add(26*time.Second), time.Second, 10)
	if err != nil || len(held) != 1 || !held[0].NextEvalAt.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("claim by b after expiry = %+v, %v", held, err)
	}
	if renewed, err := st.RenewAlertLeases(ctx, "a", t0.Add(27*time.Second), time.Second); err != nil || len(renewed) != 0 {
		t.Fatalf("renew by a after losing the lease = %+v, %v; want none", renewed, err)
	}

	// Resolving: b writes the change; the alert is reported while resolved since.
	at := t0.Add(30 * time.Second)
	res := in
	res.State, res.EndsAt, res.UpdatedAt, res.ActiveAt, res.Value = alerting.StateResolved, at, at, time.Time{}, 10
	_, _, err = st.CommitEvaluations(ctx, "b", at, []store.RuleEvaluation{{
		RuleID: rule.ID, RuleVersion: 1, NextEvalAt: at.Add(15 * time.Second),
		Instances: []store.AlertInstance{res},
		Changes:   []store.StateChange{{Fingerprint: in.Fingerprint, From: alerting.StateFiring}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		since time.Time
		want  int
	}{
		{"resolved at since", at, 1},
		{"resolved before since", at.Add(time.Second), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ActiveAlerts(ctx, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("ActiveAlerts(%s) = %d alerts, want %d", tc.since, len(got), tc.want)
			}
			if tc.want == 1 && (got[0].State != alerting.StateResolved || !got[0].EndsAt.Equal(at)) {
				t.Errorf("got %+v, want resolved at %s", got[0], at)
			}
		})
	}

	hist, err := st.AlertHistory(ctx, store.HistoryFilter{RuleID: rule.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].To != alerting.StateResolved || hist[1].To != alerting.StateFiring || hist[1].Value != 93 || hist[1].Threshold != 90 {
		t.Fatalf("history = %+v", hist)
	}
}

func TestAlertRuleEditsFenceAndResolve(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	rule := createTestRule(t, st, "disk")
	if _, err := st.CreateAlertRule(ctx, store.AlertRuleRecord{Name: "disk", Spec: json.RawMessage(`{}`), Interval: time.Second}, t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: err = %v, want ErrConflict", err)
	}
	if _, err := st.ClaimAlertLeases(ctx, "a", t0, time.Second, 10); err != nil {
		t.Fatal(err)
	}
	in := firing(rule, "db-2", t0)
	if _, _, err := st.CommitEvaluations(ctx, "a", t0, []store.RuleEvaluation{{
		RuleID: rule.ID, RuleVersion: 1, NextEvalAt: t0.Add(15 * time.Second),
		Instances: []store.AlertInstance{in}, Changes: []store.StateChange{{Fingerprint: in.Fingerprint, From: alerting.StateInactive}},
	}}); err != nil {
		t.Fatal(err)
	}
	rule.Spec = json.RawMessage(`{"kind":"threshold","window":"10m"}`)
	edited, err := st.UpdateAlertRule(ctx, rule, t0.Add(time.Second))
	if err != nil || edited.Version != 2 {
		t.Fatalf("update = %+v, %v; want version 2", edited, err)
	}
	// An evaluation of version 1 finishing after the edit is not written.
	if written, _, err := st.CommitEvaluations(ctx, "a", t0.Add(2*time.Second), []store.RuleEvaluation{{
		RuleID: rule.ID, RuleVersion: 1, NextEvalAt: t0.Add(30 * time.Second),
	}}); err != nil || len(written) != 0 {
		t.Fatalf("stale commit = %v, %v; want nothing written", written, err)
	}
	if err := st.DeleteAlertRule(ctx, rule.ID, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAlertRule(ctx, rule.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: err = %v, want ErrNotFound", err)
	}
	active, err := st.ActiveAlerts(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].State != alerting.StateResolved || !active[0].EndsAt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("after delete ActiveAlerts = %+v, want the alert resolved at the deletion", active)
	}

	res, err := st.ImportAlertRules(ctx, []store.AlertRuleRecord{
		{Name: "a", Spec: json.RawMessage(`{"x": 1}`), Interval: time.Minute, Enabled: true},
		{Name: "b", Spec: json.RawMessage(`{}`), Interval: time.Minute, Enabled: true},
	}, t0, false)
	if err != nil || res.Created != 2 {
		t.Fatalf("first import = %+v, %v", res, err)
	}
	res, err = st.ImportAlertRules(ctx, []store.AlertRuleRecord{
		{Name: "a", Spec: json.RawMessage(`{"x":1}`), Interval: time.Minute, Enabled: true},
		{Name: "b", Spec: json.RawMessage(`{}`), Interval: 2 * time.Minute, Enabled: true},
	}, t0, false)
	if err != nil || res != (store.ImportResult{Updated: 1, Unchanged: 1}) {
		t.Fatalf("second import = %+v, %v; want 1 updated, 1 unchanged", res, err)
	}
	res, err = st.ImportAlertRules(ctx, []store.AlertRuleRecord{
		{Name: "c", Spec: json.RawMessage(`{}`), Interval: time.Minute, Enabled: true},
		{Name: "b", Spec: json.RawMessage(`{}`), Interval: 2 * time.Minute, Enabled: true},
	}, t0, true)
	if err != nil || res != (store.ImportResult{Created: 1, Unchanged: 1, Deleted: 1}) {
		t.Fatalf("pruning import = %+v, %v; want 1 created, 1 unchanged, 1 deleted", res, err)
	}
	recs, err := st.AlertRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"b", "c"}) {
		t.Fatalf("rules after a pruning import: %v, want b and c", names)
	}
}

// TestAlertReplicaHeartbeat counts the replicas alive since the cutoff, and
// forgets the ones that stopped beating without leaving (a crash).
func TestAlertReplicaHeartbeat(t *testing.T) {
	s, _ := storetest.Migrated(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, beat := range []struct {
		id               string
		at, since        time.Time
		replicas, stored int
	}{
		{"a", t0, t0.Add(-time.Minute), 1, 1},
		{"b", t0.Add(time.Second), t0.Add(-time.Minute), 2, 2},
		{"a", t0.Add(time.Minute), t0.Add(30 * time.Second), 1, 1},     // b crashed after its one beat
		{"b", t0.Add(2 * time.Minute), t0.Add(30 * time.Second), 2, 2}, // b is back
	} {
		_, replicas, err := s.AlertReplicaHeartbeat(ctx, beat.id, beat.at, beat.since)
		if err != nil {
			t.Fatal(err)
		}
		var stored int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM alert_replicas`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if replicas != beat.replicas || stored != beat.stored {
			t.Errorf("beat of %s at %v: %d replicas alive, %d stored; want %d and %d", beat.id, beat.at, replicas, stored, beat.replicas, beat.stored)
		}
	}
}
