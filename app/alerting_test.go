package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amas-eye/amas/auth"
)

// A rule created through GraphQL fires on points sent to /api/put; the change
// arrives on the alertEvents subscription and shows in alerts and alertHistory.
func TestAlertRuleEndToEnd(t *testing.T) {
	s := startServer(t, "--roles", "api,ingest,alert")
	svc := auth.NewService(s.Store().Store, auth.Options{}, slog.New(slog.DiscardHandler))
	editor, err := svc.CreateToken(context.Background(), "test-editor", auth.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	const create = `mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id name kind query { metric groupBy } thresholds { severity value } interval owner enabled } }`
	in := map[string]any{"name": "hot cpu", "expr": `last(e2e.cpu{dc="eu"}[1m]) by (host) > 90 critical, > 70 warning`,
		"interval": "1s", "annotations": []map[string]string{{"key": "summary", "value": "{{.Labels.host}} at {{.Value}}"}}}

	t.Run("viewers cannot create rules", func(t *testing.T) {
		r := s.graphql(t, s.viewerToken, create, map[string]any{"in": in})
		if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
			t.Fatalf("viewer create: %+v", r.Errors)
		}
	})
	t.Run("an expression error points at the mistake", func(t *testing.T) {
		bad := map[string]any{"name": "bad", "expr": `last(e2e.cpu{dc="eu"}[1m] > 90`}
		r := s.graphql(t, editor, create, map[string]any{"in": bad})
		if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "expr: 1:27: expected \")\"") ||
			!strings.Contains(r.Errors[0].Message, "\n"+strings.Repeat(" ", 2+26)+"^") {
			t.Fatalf("bad expression: %+v", r.Errors)
		}
	})

	t.Run("a regex PostgreSQL refuses is refused on save", func(t *testing.T) {
		bad := map[string]any{"name": "bad regex", "expr": `avg(e2e.cpu{host=~"db-(?<x>1)"}[1m]) > 1`}
		r := s.graphql(t, editor, create, map[string]any{"in": bad})
		if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "filter host REGEX") {
			t.Fatalf("bad regex: %+v", r.Errors)
		}
	})

	var created struct {
		CreateAlertRule struct {
			ID, Name, Kind, Interval, Owner string
			Enabled                         bool
			Query                           struct{ GroupBy []string }
		}
	}
	mustData(t, s.graphql(t, editor, create, map[string]any{"in": in}), &created)
	rule := created.CreateAlertRule
	if rule.Kind != "LASTVALUE" || rule.Interval != "1s" || rule.Owner != "test-editor" || !rule.Enabled || rule.Query.GroupBy[0] != "host" {
		t.Fatalf("created %+v", rule)
	}

	// Subscribe before the point is sent.
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	c, _, err := dialer.Dial("ws"+strings.TrimPrefix(s.url, "http")+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func(timeout time.Duration) map[string]any {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		for {
			var msg map[string]any
			if err := c.ReadJSON(&msg); err != nil {
				t.Fatal(err)
			}
			if msg["type"] != "ping" && msg["type"] != "ka" {
				return msg
			}
		}
	}
	_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + s.viewerToken}})
	if msg := read(5 * time.Second); msg["type"] != "connection_ack" {
		t.Fatalf("connection_init answered %v", msg)
	}
	_ = c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query":     `subscription($f: AlertEventFilter) { alertEvents(filter: $f) { ruleName labels { key value } from to severity value threshold } }`,
		"variables": map[string]any{"f": map[string]any{"states": []string{"FIRING"}, "labels": []map[string]string{{"key": "severity", "value": "critical"}}}},
	}})

	now := time.Now().Unix()
	body := fmt.Sprintf(`[{"metric":"e2e.cpu","timestamp":%d,"value":95,"tags":{"host":"db-1","dc":"eu"}},
		{"metric":"e2e.cpu","timestamp":%d,"value":75,"tags":{"host":"db-2","dc":"eu"}},
		{"metric":"e2e.cpu","timestamp":%d,"value":99,"tags":{"host":"db-3","dc":"us"}}]`, now-2, now-2, now-2)
	if code, b := s.put(t, "?sync", []byte(body), false); code != http.StatusNoContent {
		t.Fatalf("put: %d %s", code, b)
	}
	msg := read(15 * time.Second)
	payload := fmt.Sprint(msg["payload"])
	if msg["type"] != "next" || !strings.Contains(payload, "to:FIRING") || !strings.Contains(payload, "value:db-1") ||
		!strings.Contains(payload, "severity:CRITICAL") || !strings.Contains(payload, "value:95") {
		t.Fatalf("alert event %v", msg)
	}

	var alerts struct {
		Alerts []struct {
			State, Severity string
			Value           float64
			Labels          []struct{ Key, Value string }
			Annotations     []struct{ Key, Value string }
		}
	}
	mustData(t, s.graphql(t, s.viewerToken, `query { alerts(filter: {states: [FIRING]}) { state severity value labels { key value } annotations { key value } } }`, nil), &alerts)
	if len(alerts.Alerts) != 3 {
		t.Fatalf("firing alerts %+v, want db-1 critical and warning, db-2 warning", alerts.Alerts)
	}
	for _, a := range alerts.Alerts {
		if a.Severity == "CRITICAL" && (a.Value != 95 || a.Annotations[0].Value != "db-1 at 95") {
			t.Errorf("critical alert %+v", a)
		}
	}
	var health struct {
		AlertRule struct {
			Health struct {
				Replica        *string
				LastEvaluation *time.Time
				LastError      *string
			}
		}
	}
	mustData(t, s.graphql(t, s.viewerToken, fmt.Sprintf(`query { alertRule(id: %q) { health { replica lastEvaluation lastError } } }`, rule.ID), nil), &health)
	if h := health.AlertRule.Health; h.Replica == nil || h.LastEvaluation == nil || h.LastError != nil {
		t.Errorf("health %+v, want a replica, a last evaluation and no error", h)
	}
	var hist struct {
		AlertHistory []struct{ From, To string }
	}
	mustData(t, s.graphql(t, s.viewerToken, fmt.Sprintf(`query { alertHistory(filter: {ruleId: %q}) { from to } }`, rule.ID), nil), &hist)
	if len(hist.AlertHistory) != 3 || hist.AlertHistory[0].From != "INACTIVE" || hist.AlertHistory[0].To != "FIRING" {
		t.Errorf("history %+v", hist.AlertHistory)
	}

	var preview struct {
		RuleTest struct {
			NoData bool
			Groups []struct {
				Tags      []struct{ Key, Value string }
				ValueText string
				Severity  *string
			}
		}
		RuleBacktest struct {
			Evaluations int
			Firing      []struct{ Severity string }
		}
	}
	from := time.Unix(now-60, 0).UTC().Format(time.RFC3339)
	to := time.Unix(now+1, 0).UTC().Format(time.RFC3339)
	mustData(t, s.graphql(t, s.viewerToken, `query($r: AlertRuleInput!, $from: Time!, $to: Time!) {
		ruleTest(rule: $r) { noData groups { tags { key value } valueText severity } }
		ruleBacktest(rule: $r, from: $from, to: $to) { evaluations firing { severity } } }`,
		map[string]any{"r": map[string]any{"name": "preview", "expr": `max(e2e.cpu[5m]) by (dc) > 90 critical`, "interval": "10s"},
			"from": from, "to": to}), &preview)
	if g := preview.RuleTest.Groups; preview.RuleTest.NoData || len(g) != 2 || g[0].ValueText != "95" || g[0].Severity == nil || *g[0].Severity != "CRITICAL" {
		t.Errorf("ruleTest %+v", preview.RuleTest)
	}
	if bt := preview.RuleBacktest; bt.Evaluations != 7 || len(bt.Firing) != 2 {
		t.Errorf("ruleBacktest %+v, want 7 evaluations and both dcs firing", bt)
	}

	// Deleting the rule resolves its alerts.
	var deleted struct{ DeleteAlertRule bool }
	mustData(t, s.graphql(t, editor, fmt.Sprintf(`mutation { deleteAlertRule(id: %q) }`, rule.ID), nil), &deleted)
	mustData(t, s.graphql(t, s.viewerToken, `query { alerts(filter: {states: [RESOLVED]}) { state severity value labels { key value } annotations { key value } } }`, nil), &alerts)
	if len(alerts.Alerts) != 3 {
		t.Errorf("after delete, resolved alerts %+v, want 3", alerts.Alerts)
	}
}
