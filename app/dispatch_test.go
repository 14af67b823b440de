package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/notifiers/notifierstest"
	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/store"
)

// webhookReceiver keeps the Alertmanager-format bodies it is sent.
type webhookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.bodies = append(w.bodies, body)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookReceiver) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bodies)
}

func (w *webhookReceiver) last() map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bodies[len(w.bodies)-1]
}

func mustData(t *testing.T, r gqlResponse, out any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("graphql errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		t.Fatal(err)
	}
}

func TestNotificationsThroughGraphQL(t *testing.T) {
	s := startServer(t, "--roles", "api,alert", "--external-url", "http://amas.example.com")
	ctx := context.Background()
	svc := auth.NewService(s.Store().Store, auth.Options{}, slog.New(slog.DiscardHandler))
	editor, err := svc.CreateToken(ctx, "test-editor", auth.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	hook := newWebhookReceiver(t)
	secretURL := hook.srv.URL + "/hook?key=top-secret"

	const create = `mutation($in: ChannelInput!) { createChannel(input: $in) { id name type secrets { key set } settings { key value } } }`
	in := map[string]any{"name": "ops", "type": "webhook", "secrets": []map[string]any{{"key": "url", "value": secretURL}}}
	if r := s.graphql(t, s.viewerToken, create, map[string]any{"in": in}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
		t.Fatalf("a viewer created a channel: %+v", r)
	}
	r := s.graphql(t, editor, create, map[string]any{"in": in})
	if strings.Contains(string(r.Data), "top-secret") {
		t.Fatalf("createChannel returned the secret: %s", r.Data)
	}
	var created struct {
		CreateChannel struct {
			ID      string
			Secrets []struct {
				Key string
				Set bool
			}
		}
	}
	mustData(t, r, &created)
	id := created.CreateChannel.ID
	if got := created.CreateChannel.Secrets; len(got) != 2 || got[0].Key != "url" || !got[0].Set || got[1].Set {
		t.Errorf("secrets = %+v, want url set and bearer_token not", got)
	}
	bad := map[string]any{"name": "bad", "type": "webhook", "settings": []map[string]any{{"key": "url", "value": "http://x"}}}
	if r := s.graphql(t, editor, create, map[string]any{"in": bad}); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, `"url" is a secret`) {
		t.Errorf("a secret given as a setting: %+v", r.Errors)
	}

	// An update without secrets keeps them: the test message still arrives.
	const update = `mutation($id: ID!, $in: ChannelInput!) { updateChannel(id: $id, input: $in) { name } }`
	mustData(t, s.graphql(t, editor, update, map[string]any{"id": id, "in": map[string]any{"name": "ops-team", "type": "webhook"}}), &struct{}{})
	var tested struct {
		TestChannel struct {
			Status   string
			Test     bool
			Attempts []struct{ Attempt int }
		}
	}
	mustData(t, s.graphql(t, editor, `mutation($id: ID!) { testChannel(id: $id) { status test attempts { attempt } } }`, map[string]any{"id": id}), &tested)
	if tested.TestChannel.Status != "SENT" || !tested.TestChannel.Test || len(tested.TestChannel.Attempts) != 1 || hook.count() != 1 {
		t.Fatalf("testChannel = %+v, receiver got %d", tested, hook.count())
	}

	const setRouting = `mutation($root: NotifyRouteInput!) { setNotifyRouting(root: $root) {
		root { channels { name } effectiveGroupBy effectiveGroupWait routes { matchers { name op value } effectiveGroupInterval } } updatedBy } }`
	r = s.graphql(t, editor, setRouting, map[string]any{"root": map[string]any{"channelIds": []string{"999"}}})
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "no channel with id 999") {
		t.Errorf("route to a missing channel: %+v", r.Errors)
	}
	var routing struct {
		SetNotifyRouting struct {
			Root struct {
				Channels           []struct{ Name string }
				EffectiveGroupBy   []string
				EffectiveGroupWait string
				Routes             []struct{ EffectiveGroupInterval string }
			}
			UpdatedBy string
		}
	}
	mustData(t, s.graphql(t, editor, setRouting, map[string]any{"root": map[string]any{
		"channelIds": []string{id}, "groupBy": []string{"alertname"}, "groupWait": "1ms", "groupInterval": "1s",
		"routes": []map[string]any{{"matchers": []map[string]any{{"name": "team", "op": "EQ", "value": "db"}}, "channelIds": []string{id}}},
	}}), &routing)
	root := routing.SetNotifyRouting.Root
	if len(root.Channels) != 1 || root.Channels[0].Name != "ops-team" || root.EffectiveGroupWait != "1ms" ||
		len(root.Routes) != 1 || root.Routes[0].EffectiveGroupInterval != "1s" || routing.SetNotifyRouting.UpdatedBy != "test-editor" {
		t.Errorf("routing = %+v", routing)
	}

	// An alert the engine stored and announced reaches the receiver.
	labels := alerting.Labels{"alertname": "DiskFull", "host": "db-1"}
	fp := labels.Fingerprint()
	lb, _ := json.Marshal(labels)
	startsAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	pool := s.Store().Store.Pool()
	if _, err := pool.Exec(ctx, `
INSERT INTO alert_instances (rule_id, fingerprint, rule_name, labels, annotations, state, severity, value, threshold, active_at, starts_at, updated_at)
VALUES (1, $1, 'DiskFull', $2, '{"summary":"disk full"}', 'firing', 'critical', 99, 90, $3, $3, now())`, fp, lb, startsAt); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify($1, '{}')`, store.AlertsChannel); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the alert's notification", 15*time.Second, func() bool { return hook.count() == 2 })
	body := hook.last()
	if body["version"] != "4" || body["externalURL"] != "http://amas.example.com" || body["receiver"] != "ops-team" || body["status"] != "firing" {
		t.Errorf("webhook body = %v", body)
	}

	var log struct {
		Notifications []struct {
			Status      string
			ChannelName string
			GroupKey    string
			Alerts      []struct{ Fingerprint string }
			Attempts    []struct{ Error string }
		}
	}
	mustData(t, s.graphql(t, s.viewerToken, `{ notifications(filter: {status: SENT}) { status channelName groupKey alerts { fingerprint } attempts { error } } }`, nil), &log)
	if len(log.Notifications) != 2 || log.Notifications[0].GroupKey != `{}:{alertname="DiskFull"}` || log.Notifications[0].Alerts[0].Fingerprint != fp {
		t.Errorf("notifications = %+v", log)
	}

	// Silence and acknowledge, then see the alert's mute state.
	var sil struct {
		CreateSilence struct {
			ID, State, CreatedBy string
		}
	}
	mustData(t, s.graphql(t, editor, `mutation($in: SilenceInput!) { createSilence(input: $in) { id state createdBy } }`, map[string]any{"in": map[string]any{
		"matchers": []map[string]any{{"name": "host", "op": "RE", "value": "db-.*"}}, "endsAt": time.Now().Add(time.Hour).Format(time.RFC3339), "comment": "disk swap",
	}}), &sil)
	if sil.CreateSilence.State != "ACTIVE" || sil.CreateSilence.CreatedBy != "test-editor" {
		t.Errorf("silence = %+v", sil)
	}
	var ack struct{ Acknowledge struct{ StartsAt time.Time } }
	mustData(t, s.graphql(t, editor, `mutation($fp: String!) { acknowledge(fingerprint: $fp, comment: "on it") { startsAt } }`, map[string]any{"fp": fp}), &ack)
	if !ack.Acknowledge.StartsAt.Equal(startsAt) {
		t.Errorf("acknowledged episode starts %v, want %v", ack.Acknowledge.StartsAt, startsAt)
	}
	if r := s.graphql(t, editor, `mutation { acknowledge(fingerprint: "nope") { startsAt } }`, nil); len(r.Errors) == 0 {
		t.Error("acknowledging an unknown alert succeeded")
	}
	var mutes struct {
		AlertMutes []struct {
			Fingerprint  string
			SilencedBy   []string
			Acknowledged bool
			Muted        bool
		}
	}
	mustData(t, s.graphql(t, s.viewerToken, `{ alertMutes { fingerprint silencedBy acknowledged muted } }`, nil), &mutes)
	if len(mutes.AlertMutes) != 1 || !mutes.AlertMutes[0].Muted || !mutes.AlertMutes[0].Acknowledged ||
		len(mutes.AlertMutes[0].SilencedBy) != 1 || mutes.AlertMutes[0].SilencedBy[0] != sil.CreateSilence.ID {
		t.Errorf("alertMutes = %+v", mutes)
	}
	// The silenced alert stays listed among the alerts, marked as silenced.
	var listed struct {
		Alerts []struct {
			Fingerprint, State string
			Mute               struct {
				SilencedBy []string
				Muted      bool
			}
		}
	}
	mustData(t, s.graphql(t, s.viewerToken, `{ alerts { fingerprint state mute { silencedBy muted } } }`, nil), &listed)
	if len(listed.Alerts) != 1 || listed.Alerts[0].Fingerprint != fp || listed.Alerts[0].State != "FIRING" ||
		!listed.Alerts[0].Mute.Muted || len(listed.Alerts[0].Mute.SilencedBy) != 1 {
		t.Errorf("alerts = %+v, want the firing alert marked silenced", listed)
	}
	var expired struct{ ExpireSilence struct{ State string } }
	mustData(t, s.graphql(t, editor, `mutation($id: ID!) { expireSilence(id: $id) { state } }`, map[string]any{"id": sil.CreateSilence.ID}), &expired)
	if expired.ExpireSilence.State != "EXPIRED" {
		t.Errorf("expired silence state = %s", expired.ExpireSilence.State)
	}

	var preview struct{ PreviewTemplate struct{ Title, Text string } }
	mustData(t, s.graphql(t, s.viewerToken, `query($s: [SampleAlertInput!]) { previewTemplate(type: "slack", template: "{{define \"message\"}}{{range .Alerts}}{{.Labels.host}} {{end}}{{end}}", sample: $s) { title text } }`,
		map[string]any{"s": []map[string]any{{"labels": []map[string]any{{"key": "alertname", "value": "X"}, {"key": "host", "value": "h9"}}}}}), &preview)
	if preview.PreviewTemplate.Text != "h9" || preview.PreviewTemplate.Title != "[FIRING:1] X" {
		t.Errorf("preview = %+v", preview)
	}
	var chans struct {
		Channels []struct {
			Name    string
			Secrets []struct{ Set bool }
		}
	}
	r = s.graphql(t, s.viewerToken, `{ channels { name secrets { set } } }`, nil)
	mustData(t, r, &chans)
	if strings.Contains(string(r.Data), "top-secret") || len(chans.Channels) != 1 {
		t.Errorf("channels = %s", r.Data)
	}
}

// Points sent to /api/put make a rule fire; the dispatcher sends one grouped
// Alertmanager-format message to a webhook and one mail through a real SMTP
// server (STARTTLS, AUTH PLAIN), then the resolved message when the value drops.
func TestPutToGroupedWebhookAndMail(t *testing.T) {
	s := startServer(t, "--roles", "api,ingest,alert", "--external-url", "http://amas.example.com")
	ctx := context.Background()
	svc := auth.NewService(s.Store().Store, auth.Options{}, slog.New(slog.DiscardHandler))
	editor, err := svc.CreateToken(ctx, "test-editor", auth.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	hook := newWebhookReceiver(t)
	smtp := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{Username: "amas", Password: "pw"})

	const create = `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`
	var web, mailCh struct{ CreateChannel struct{ ID string } }
	mustData(t, s.graphql(t, editor, create, map[string]any{"in": map[string]any{"name": "ops", "type": "webhook",
		"secrets": []map[string]any{{"key": "url", "value": hook.srv.URL}}}}), &web)
	mustData(t, s.graphql(t, editor, create, map[string]any{"in": map[string]any{"name": "mail", "type": "email",
		"settings": []map[string]any{{"key": "smarthost", "value": smtp.Addr}, {"key": "from", "value": "amas@example.com"},
			{"key": "to", "value": "ops@example.com"}, {"key": "username", "value": "amas"}, {"key": "ca_cert", "value": smtp.CACert}},
		"secrets": []map[string]any{{"key": "password", "value": "pw"}}}}), &mailCh)
	mustData(t, s.graphql(t, editor, `mutation($root: NotifyRouteInput!) { setNotifyRouting(root: $root) { updatedBy } }`,
		map[string]any{"root": map[string]any{"groupBy": []string{"alertname"}, "groupWait": "1ms", "groupInterval": "1s",
			"channelIds": []string{web.CreateChannel.ID, mailCh.CreateChannel.ID}}}), &struct{}{})
	var rule struct{ CreateAlertRule struct{ ID string } }
	mustData(t, s.graphql(t, editor, `mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"name": "DiskFull", "expr": `last(e2e.disk{dc="eu"}[1m]) by (host) > 90 critical`, "interval": "1s",
		"annotations": []map[string]string{{"key": "summary", "value": "{{.Labels.host}} at {{.Value}}%"}}}}), &rule)

	put := func(a, b float64) {
		t.Helper()
		now := time.Now().Unix()
		body := fmt.Sprintf(`[{"metric":"e2e.disk","timestamp":%d,"value":%g,"tags":{"host":"db-1","dc":"eu"}},
			{"metric":"e2e.disk","timestamp":%d,"value":%g,"tags":{"host":"db-2","dc":"eu"}}]`, now, a, now, b)
		if code, msg := s.put(t, "?sync", []byte(body), false); code != http.StatusNoContent {
			t.Fatalf("put: %d %s", code, msg)
		}
	}
	put(97, 95)
	waitFor(t, "the grouped webhook message", 20*time.Second, func() bool { return hook.count() >= 1 })
	msg := hook.last()
	alerts, _ := msg["alerts"].([]any)
	if msg["receiver"] != "ops" || msg["status"] != "firing" || msg["version"] != "4" || msg["externalURL"] != "http://amas.example.com" ||
		msg["groupKey"] != `{}:{alertname="DiskFull"}` || len(alerts) != 2 {
		t.Fatalf("webhook message = %v", msg)
	}
	for i, host := range []string{"db-1", "db-2"} {
		a := alerts[i].(map[string]any)
		labels := a["labels"].(map[string]any)
		annotations := a["annotations"].(map[string]any)
		if a["status"] != "firing" || labels["host"] != host || labels["alertname"] != "DiskFull" || labels["severity"] != "critical" ||
			!strings.HasPrefix(annotations["summary"].(string), host+" at 9") || a["generatorURL"] != "/alerting/rules/"+rule.CreateAlertRule.ID {
			t.Errorf("alert %d = %v", i, a)
		}
	}
	if groupLabels := msg["groupLabels"].(map[string]any); len(groupLabels) != 1 || groupLabels["alertname"] != "DiskFull" {
		t.Errorf("groupLabels = %v", groupLabels)
	}
	mails := smtp.Wait(t, 1)
	if m := mails[0]; !m.TLS || m.AuthUser != "amas" || !strings.Contains(string(m.Data), "Subject: [FIRING:2] DiskFull") {
		t.Errorf("mail over TLS %v as %q:\n%s", m.TLS, m.AuthUser, m.Data)
	}

	put(10, 95)
	waitFor(t, "the resolved message", 20*time.Second, func() bool { return hook.count() >= 2 })
	msg = hook.last()
	alerts, _ = msg["alerts"].([]any)
	if len(alerts) != 2 || alerts[0].(map[string]any)["status"] != "resolved" || alerts[1].(map[string]any)["status"] != "firing" {
		t.Errorf("after db-1 recovered: %v", msg)
	}
	time.Sleep(2 * time.Second) // a few group intervals: nothing new to say
	if n := hook.count(); n != 2 {
		t.Errorf("webhook got %d messages, want 2", n)
	}
}
