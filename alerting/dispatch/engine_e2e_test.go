package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting/dispatch"
	alertengine "github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/expr"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/alerting/notifiers/notifierstest"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
)

// storeRule saves a rule written in the expression language.
func storeRule(t *testing.T, st *store.Store, name, src string) int64 {
	t.Helper()
	r := &rule.Rule{Name: name, Expr: src, Interval: rule.Duration(time.Minute), Enabled: true,
		Annotations: map[string]string{"summary": `{{.Labels.host}} is at {{.Value}}`}}
	if err := r.ApplyExpr(expr.Compile); err != nil {
		t.Fatal(err)
	}
	r.Defaults()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Record()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := st.CreateAlertRule(context.Background(), rec, t0)
	if err != nil {
		t.Fatal(err)
	}
	return saved.ID
}

func writePoints(t *testing.T, st *store.Store, metric string, hosts int, at time.Time, v float64) {
	t.Helper()
	ctx := context.Background()
	refs := make([]store.SeriesRef, hosts)
	for i := range refs {
		refs[i] = store.SeriesRef{Metric: metric, Tags: map[string]string{"host": fmt.Sprintf("h%04d", i), "dc": "dc1"}}
	}
	ids, err := st.ResolveSeries(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]store.Sample, len(ids))
	for i, id := range ids {
		samples[i] = store.Sample{SeriesID: id, Time: at, Value: v}
	}
	if err := st.WriteSamples(ctx, samples, metric); err != nil {
		t.Fatal(err)
	}
}

// TestEngineStormToWebhookAndMail runs the real engine over 1,000 series of one
// cause: the rule fires 1,000 instances, and each channel gets one message.
func TestEngineStormToWebhookAndMail(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	smtp := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{Username: "amas", Password: "pw"})
	ctx := context.Background()
	mailCh, err := f.st.CreateChannel(ctx, notifiers.Channel{Name: "mail", Type: "email", SendResolved: true,
		Settings: map[string]string{"smarthost": smtp.Addr, "from": "amas@example.com", "to": "ops@example.com", "username": "amas", "ca_cert": smtp.CACert},
		Secrets:  map[string]string{"password": "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true), mailCh.ID}, GroupBy: []string{"alertname", "dc"}, GroupWait: d(30 * time.Second)})
	storeRule(t, f.st, "HighLoad", `avg(sys.load1{dc="dc1"}[5m]) by (host, dc) > 8`)
	writePoints(t, f.st, "sys.load1", 1000, t0.Add(-time.Minute), 12)

	eng := alertengine.New(f.st, slog.New(slog.DiscardHandler), alertengine.Options{ID: "e1", Tick: time.Second, Now: f.clk.Now})
	if _, err := eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	alerts, err := f.st.ActiveAlerts(ctx, t0)
	if err != nil || len(alerts) != 1000 {
		t.Fatalf("engine fired %d alerts (%v), want 1000", len(alerts), err)
	}
	d := dispatch.New(dispatch.Deps{Alerts: f.st, Settings: f.st, Log: f.st, Leader: f.st}, dispatch.Config{Now: f.clk.Now})
	for _, step := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		f.clk.Advance(step)
		if _, err := d.Round(ctx, f.lease.Term()); err != nil {
			t.Fatal(err)
		}
	}
	got := h.payloads()
	if len(got) != 1 || len(got[0].Alerts) != 1000 || got[0].GroupKey != `{}:{alertname="HighLoad", dc="dc1"}` {
		t.Fatalf("webhook got %d messages (first: %d alerts, key %q), want one with 1000", len(got), lenAlerts(got), keyOf(got))
	}
	hosts := map[string]bool{}
	for _, a := range got[0].Alerts {
		hosts[a.Labels["host"]] = true
		if a.Status != "firing" || a.Labels["alertname"] != "HighLoad" {
			t.Fatalf("alert %+v", a)
		}
	}
	if len(hosts) != 1000 {
		t.Errorf("message covers %d hosts, want 1000", len(hosts))
	}
	mails := smtp.Wait(t, 1)
	if len(mails) != 1 || !mails[0].TLS || mails[0].AuthUser != "amas" {
		t.Fatalf("SMTP server got %d mails (%+v)", len(mails), mails)
	}
	subject, text := mailParts(t, mails[0].Data)
	if subject != "[FIRING:1000] HighLoad dc1" || strings.Count(text, "- h") != 1000 {
		t.Errorf("mail subject %q, %d alerts in the text part", subject, strings.Count(text, "- h"))
	}
}

func lenAlerts(p []payload) int {
	if len(p) == 0 {
		return 0
	}
	return len(p[0].Alerts)
}

func keyOf(p []payload) string {
	if len(p) == 0 {
		return ""
	}
	return p[0].GroupKey
}

// mailParts decodes a mail's subject and its text/plain part.
func mailParts(t *testing.T, data []byte) (string, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p.Header.Get("Content-Type")+"\n"+string(b))
	}
	sort.Strings(parts)
	for _, p := range parts {
		if strings.HasPrefix(p, "text/plain") {
			return subject, p
		}
	}
	t.Fatal("no text/plain part")
	return "", ""
}
