package events_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/events"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)

// commitChanges writes n firing alerts of one rule (hosts h0..h(n-1)) as one evaluation.
func commitChanges(t *testing.T, st *store.Store, rule store.AlertRuleRecord, n int, at time.Time) {
	t.Helper()
	ev := store.RuleEvaluation{RuleID: rule.ID, RuleVersion: rule.Version, NextEvalAt: at.Add(time.Minute)}
	for i := range n {
		labels := alerting.Labels{"alertname": rule.Name, "host": "h" + string(rune('a'+i%26)) + string(rune('a'+i/26)), "severity": "critical"}
		in := store.AlertInstance{Alert: alerting.Alert{RuleID: rule.ID, RuleName: rule.Name, Fingerprint: labels.Fingerprint(),
			Labels: labels, State: alerting.StateFiring, Severity: alerting.SeverityCritical, Value: 1, Threshold: 0,
			StartsAt: at, UpdatedAt: at}, HasValue: true, ActiveAt: at}
		ev.Instances = append(ev.Instances, in)
		ev.Changes = append(ev.Changes, store.StateChange{Fingerprint: in.Fingerprint, From: alerting.StateInactive})
	}
	if _, err := st.ClaimAlertLeases(context.Background(), "e", at, time.Hour, 10); err != nil {
		t.Fatal(err)
	}
	written, _, err := st.CommitEvaluations(context.Background(), "e", at, []store.RuleEvaluation{ev})
	if err != nil || len(written) != 1 {
		t.Fatalf("commit = %v, %v", written, err)
	}
}

func TestHubFansOutAndBoundsSlowSubscribers(t *testing.T) {
	st, db := storetest.Migrated(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, db.URL) }
	hub := events.New(connect, st, slog.New(slog.DiscardHandler), events.Options{Buffer: 4})
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()

	spec, _ := json.Marshal(map[string]string{"kind": "threshold"})
	rule, err := st.CreateAlertRule(ctx, store.AlertRuleRecord{Name: "r", Spec: spec, Interval: time.Minute, Enabled: true}, t0)
	if err != nil {
		t.Fatal(err)
	}
	subCtx, subCancel := context.WithCancel(ctx)
	all := hub.Subscribe(subCtx, events.Filter{})
	onlyHA := hub.Subscribe(ctx, events.Filter{Labels: map[string]string{"host": "haa"}})
	other := hub.Subscribe(ctx, events.Filter{RuleID: rule.ID + 1})

	// The LISTEN may not be up yet: commit until the first change arrives.
	var first store.AlertHistoryEntry
	deadline := time.After(10 * time.Second)
wait:
	for {
		commitChanges(t, st, rule, 1, t0)
		select {
		case first = <-all:
			break wait
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no event within 10s")
		}
	}
	if first.RuleID != rule.ID || first.To != alerting.StateFiring || first.Labels["host"] != "haa" {
		t.Fatalf("event %+v", first)
	}
	if got := <-onlyHA; got.Labels["host"] != "haa" {
		t.Fatalf("filtered subscriber got %+v", got)
	}
	// A storm of 10 changes: the unread subscriber with room for 4 is disconnected.
	commitChanges(t, st, rule, 10, t0.Add(time.Minute))
	n := 0
	for range all { // ends: the channel is closed
		n++
	}
	if n >= 10 {
		t.Errorf("slow subscriber received %d changes of the storm of 10, want it disconnected first", n)
	}
	select {
	case e, ok := <-other:
		if ok {
			t.Errorf("subscriber of another rule got %+v", e)
		}
	default:
	}
	subCancel()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
