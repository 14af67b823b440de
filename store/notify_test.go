package store_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/alerting/silence"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestChannelsCRUD(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	ch := notifiers.Channel{Name: "ops", Type: "webhook", Settings: map[string]string{"max_alerts": "5"},
		Secrets: map[string]string{"url": "https://example.com/hook?key=k"}, SendResolved: true}
	saved, err := st.CreateChannel(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateChannel(ctx, ch); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second channel named ops: %v, want ErrConflict", err)
	}
	saved.Secrets["bearer_token"] = "t"
	saved.Template = `{{define "title"}}x{{end}}`
	updated, err := st.UpdateChannel(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Channel(ctx, saved.ID)
	if err != nil || got.Secrets["bearer_token"] != "t" || got.Secrets["url"] != ch.Secrets["url"] || got.Settings["max_alerts"] != "5" ||
		got.Template != saved.Template || !got.UpdatedAt.Equal(updated.UpdatedAt) || !got.UpdatedAt.After(saved.CreatedAt) {
		t.Errorf("channel after update = %+v (%v)", got, err)
	}
	if err := st.DeleteChannel(ctx, saved.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Channel(ctx, saved.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted channel: %v", err)
	}
	if err := st.DeleteChannel(ctx, saved.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestRoutesSilencesInhibitRules(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	r, by, at, err := st.Routes(ctx)
	if err != nil || by != "" || !at.IsZero() || len(r.GroupBy) != 1 || r.GroupBy[0] != "alertname" {
		t.Fatalf("default tree = %+v %q %v %v", r, by, at, err)
	}
	m, _ := alerting.NewMatcher("team", alerting.MatchRegexp, "db|web")
	wait := 10 * time.Second
	tree := dispatch.Route{Channels: []int64{1}, GroupBy: []string{}, Routes: []dispatch.Route{{Matchers: alerting.Matchers{m}, GroupWait: &wait}}}
	if err := st.SetRoutes(ctx, tree, "ana"); err != nil {
		t.Fatal(err)
	}
	r, by, _, err = st.Routes(ctx)
	if err != nil || by != "ana" || r.GroupBy == nil || len(r.GroupBy) != 0 || *r.Routes[0].GroupWait != wait ||
		!r.Routes[0].Matchers.Matches(alerting.Labels{"team": "web"}) || r.Routes[0].GroupBy != nil {
		t.Errorf("saved tree = %+v, %q, %v (group_by [] and null must survive)", r, by, err)
	}

	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	pending, err := st.CreateSilence(ctx, silence.Silence{Matchers: alerting.Matchers{m}, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), CreatedBy: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	active, err := st.CreateSilence(ctx, silence.Silence{Matchers: alerting.Matchers{m}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), CreatedBy: "ana", Comment: "c"})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := st.ExpireSilence(ctx, pending.ID, now)
	if err != nil || expired.State(now) != silence.StateExpired || expired.State(now.Add(90*time.Minute)) == silence.StateActive {
		t.Errorf("expiring a pending silence: %+v, %v", expired, err)
	}
	list, err := st.Silences(ctx, now)
	if err != nil || len(list) != 1 || list[0].ID != active.ID || list[0].Comment != "c" {
		t.Errorf("silences not expired at now = %+v, %v", list, err)
	}
	if _, err := st.ExpireSilence(ctx, 999, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expire unknown: %v", err)
	}

	rule, err := st.CreateInhibitRule(ctx, inhibit.Rule{Source: alerting.Matchers{m}, Target: alerting.Matchers{m}, Equal: []string{"host"}, CreatedBy: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	rule.Equal = nil
	if _, err := st.UpdateInhibitRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	rules, err := st.InhibitRules(ctx)
	if err != nil || len(rules) != 1 || len(rules[0].Equal) != 0 || rules[0].CreatedBy != "ana" {
		t.Errorf("inhibition rules = %+v, %v", rules, err)
	}
	if err := st.DeleteInhibitRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteInhibitRule(ctx, rule.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

// TestNotificationLog takes the dispatcher's lock on a connection of its own,
// which the one-connection test server (PGlite) cannot give.
func TestNotificationLog(t *testing.T) {
	if os.Getenv("AMAS_TEST_SINGLE_DB") == "1" {
		t.Skip("needs a second connection for the dispatcher's lock")
	}
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	lease, err := st.TryLeadDispatch(ctx, "one")
	if err != nil || lease == nil {
		t.Fatalf("lead: %v %v", lease, err)
	}
	defer lease.Release()
	if other, err := st.TryLeadDispatch(ctx, "two"); err != nil || other != nil {
		t.Fatalf("a second leader while the first holds the lock: %v, %v", other, err)
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	entry := func(key string, status dispatch.Status) dispatch.LogEntry {
		return dispatch.LogEntry{GroupKey: key, ChannelID: 7, ChannelName: "ops", ChannelType: "webhook", Status: status, CreatedAt: now,
			Alerts: []dispatch.LogAlert{{Fingerprint: "f", Status: "firing", StartsAt: now}}, Firing: 1}
	}
	sent, err := st.BeginNotification(ctx, lease.Term(), entry("g1", dispatch.StatusSending))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAttempt(ctx, sent, dispatch.Attempt{N: 1, At: now, Duration: time.Millisecond}, dispatch.StatusSent); err != nil {
		t.Fatal(err)
	}
	failed, _ := st.BeginNotification(ctx, lease.Term(), entry("g1", dispatch.StatusSending))
	if err := st.RecordAttempt(ctx, failed, dispatch.Attempt{N: 1, At: now, Error: "boom"}, dispatch.StatusFailed); err != nil {
		t.Fatal(err)
	}
	test := entry("g1", dispatch.StatusSending)
	test.Test = true
	if _, err := st.BeginNotification(ctx, 0, test); err != nil {
		t.Fatalf("test message without a term: %v", err)
	}
	if _, err := st.BeginNotification(ctx, lease.Term()+1, entry("g2", dispatch.StatusSending)); !errors.Is(err, dispatch.ErrNotLeader) {
		t.Errorf("logging under a term that is not current: %v, want ErrNotLeader", err)
	}
	last, err := st.LastNotifications(ctx, []dispatch.LogKey{{GroupKey: "g1", ChannelID: 7}, {GroupKey: "g2", ChannelID: 7}})
	if err != nil || len(last) != 1 || last[dispatch.LogKey{GroupKey: "g1", ChannelID: 7}].ID != sent {
		t.Errorf("last notifications = %+v, %v; want the sent one (not the failed or the test one)", last, err)
	}
	log, err := st.Notifications(ctx, store.NotificationFilter{Status: dispatch.StatusFailed})
	if err != nil || len(log) != 1 || log[0].Error != "boom" || len(log[0].AttemptList) != 1 || log[0].FinishedAt.IsZero() {
		t.Errorf("failed notifications = %+v, %v", log, err)
	}
	all, err := st.Notifications(ctx, store.NotificationFilter{GroupKey: "g", ChannelID: 7, Limit: 2})
	if err != nil || len(all) != 2 || all[0].ID < all[1].ID {
		t.Errorf("newest two = %+v, %v", all, err)
	}
}
