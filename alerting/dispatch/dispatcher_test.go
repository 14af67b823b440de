package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/alerting/silence"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// clock is the fake time of grouping decisions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// engine is an in-memory AlertSource standing in for the rule engine.
type engine struct {
	mu     sync.Mutex
	alerts map[string]alerting.Alert
}

func newEngine() *engine { return &engine{alerts: map[string]alerting.Alert{}} }

func (e *engine) ActiveAlerts(_ context.Context, resolvedSince time.Time) ([]alerting.Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []alerting.Alert
	for _, a := range e.alerts {
		if !a.Resolved() || !a.EndsAt.Before(resolvedSince) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (e *engine) fire(at time.Time, kv ...string) alerting.Alert {
	l := alerting.Labels{}
	for i := 0; i < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	a := alerting.Alert{RuleID: 1, RuleName: l["alertname"], Labels: l, Fingerprint: l.Fingerprint(),
		Annotations: map[string]string{"summary": l["alertname"] + " on " + l["host"]},
		State:       alerting.StateFiring, Severity: alerting.SeverityCritical, StartsAt: at, UpdatedAt: at, GeneratorURL: "/alerting/rules/1"}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.alerts[a.Fingerprint] = a
	return a
}

func (e *engine) resolve(a alerting.Alert, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a.State, a.EndsAt, a.UpdatedAt = alerting.StateResolved, at, at
	e.alerts[a.Fingerprint] = a
}

// payload is the Alertmanager webhook body as a receiver decodes it.
type payload struct {
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	GroupKey    string            `json:"groupKey"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Fingerprint string            `json:"fingerprint"`
	} `json:"alerts"`
}

func (p payload) summary() string {
	var parts []string
	for _, a := range p.Alerts {
		parts = append(parts, a.Status+":"+a.Labels["host"])
	}
	return p.Status + " " + fmt.Sprint(parts)
}

// hook is an httptest webhook receiver.
type hook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []payload
	raw [][]byte
	// fail answers the next n requests with 503.
	fail int
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail > 0 {
			h.fail--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var p payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		h.got = append(h.got, p)
		h.raw = append(h.raw, b)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) payloads() []payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func (h *hook) bodies() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.raw)
}

func (h *hook) failNext(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail = n
}

// fixture is a dispatcher on a real database with a fake engine and clock.
type fixture struct {
	t     *testing.T
	st    *store.Store
	eng   *engine
	clk   *clock
	d     *dispatch.Dispatcher
	lease dispatch.Lease
}

func newFixture(t *testing.T, cfg dispatch.Config) *fixture {
	t.Helper()
	st, _ := storetest.Migrated(t)
	f := &fixture{t: t, st: st, eng: newEngine(), clk: &clock{t: t0}}
	cfg.Now = f.clk.Now
	cfg.Holder = "test"
	cfg.Retry = dispatch.RetryPolicy{Attempts: 3, Initial: time.Second}
	f.d = dispatch.New(dispatch.Deps{Alerts: f.eng, Settings: st, Log: st, Leader: st,
		Sleep: func(ctx context.Context, d time.Duration) bool { f.clk.Advance(d); return ctx.Err() == nil }}, cfg)
	lease, err := st.TryLeadDispatch(context.Background(), "test")
	if err != nil || lease == nil {
		t.Fatalf("lead: %v, %v", lease, err)
	}
	f.lease = lease
	t.Cleanup(lease.Release)
	return f
}

func (f *fixture) channel(name string, h *hook, sendResolved bool) int64 {
	f.t.Helper()
	ch, err := f.st.CreateChannel(context.Background(), notifiers.Channel{Name: name, Type: "webhook",
		Secrets: map[string]string{"url": h.srv.URL}, SendResolved: sendResolved})
	if err != nil {
		f.t.Fatal(err)
	}
	return ch.ID
}

func (f *fixture) routes(r dispatch.Route) {
	f.t.Helper()
	if _, err := dispatch.Compile(r); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SetRoutes(context.Background(), r, "test"); err != nil {
		f.t.Fatal(err)
	}
}

// round advances the clock by d and runs one round.
func (f *fixture) round(d time.Duration) {
	f.t.Helper()
	f.clk.Advance(d)
	if _, err := f.d.Round(context.Background(), f.lease.Term()); err != nil {
		f.t.Fatalf("round at %s: %v", f.clk.Now().Sub(t0), err)
	}
}

func (f *fixture) expect(h *hook, want ...string) {
	f.t.Helper()
	got := h.payloads()
	var sums []string
	for _, p := range got {
		sums = append(sums, p.summary())
	}
	if !slices.Equal(sums, want) {
		f.t.Fatalf("at %s the receiver got\n%q\nwant\n%q", f.clk.Now().Sub(t0), sums, want)
	}
}

func d(v time.Duration) *time.Duration { return &v }

func TestGroupWaitIntervalRepeat(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupBy: []string{"alertname"},
		GroupWait: d(30 * time.Second), GroupInterval: d(5 * time.Minute), RepeatInterval: d(time.Hour)})

	f.eng.fire(t0, "alertname", "HighCPU", "host", "a")
	f.round(0)
	f.round(29 * time.Second)
	f.expect(h) // group_wait not over
	f.round(time.Second)
	f.expect(h, "firing [firing:a]")

	f.eng.fire(f.clk.Now(), "alertname", "HighCPU", "host", "b")
	f.round(time.Minute)
	f.expect(h, "firing [firing:a]") // group_interval not over
	f.round(4 * time.Minute)
	f.expect(h, "firing [firing:a]", "firing [firing:a firing:b]")

	f.round(5 * time.Minute)
	f.round(40 * time.Minute)
	f.expect(h, "firing [firing:a]", "firing [firing:a firing:b]") // nothing new, repeat not due
	f.round(15 * time.Minute)
	f.expect(h, "firing [firing:a]", "firing [firing:a firing:b]", "firing [firing:a firing:b]") // repeat_interval
	if p := h.payloads()[0]; p.GroupKey != `{}:{alertname="HighCPU"}` || p.Receiver != "ops" || p.GroupLabels["alertname"] != "HighCPU" {
		t.Errorf("payload group key %q, receiver %q, group labels %v", p.GroupKey, p.Receiver, p.GroupLabels)
	}
}

func TestStormOneMessagePerGroup(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupBy: []string{"alertname", "dc"},
		GroupWait: d(30 * time.Second)})
	for i := range 1000 {
		f.eng.fire(t0, "alertname", "HostUnreachable", "dc", fmt.Sprintf("dc%d", i%2), "host", fmt.Sprintf("h%04d", i))
	}
	f.round(0)
	f.round(30 * time.Second)
	got := h.payloads()
	if len(got) != 2 {
		t.Fatalf("1,000 instances in 2 groups gave %d messages, want 2", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].GroupLabels["dc"] < got[j].GroupLabels["dc"] })
	for i, p := range got {
		if p.GroupLabels["dc"] != fmt.Sprintf("dc%d", i) || len(p.Alerts) != 500 {
			t.Errorf("message %d: group %v with %d alerts, want dc%d with 500", i, p.GroupLabels, len(p.Alerts), i)
		}
	}
	f.round(5 * time.Minute)
	if n := len(h.payloads()); n != 2 {
		t.Errorf("after another group_interval: %d messages, want still 2", n)
	}
}

func TestResolvedMessages(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	withResolved, without := newHook(t), newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("with", withResolved, true), f.channel("without", without, false)},
		GroupBy: []string{"alertname"}, GroupWait: d(0), GroupInterval: d(time.Minute)})
	a := f.eng.fire(t0, "alertname", "Disk", "host", "a")
	b := f.eng.fire(t0, "alertname", "Disk", "host", "b")
	f.round(0)
	f.eng.resolve(a, f.clk.Now())
	f.round(time.Minute)
	f.expect(withResolved, "firing [firing:a firing:b]", "firing [resolved:a firing:b]")
	f.expect(without, "firing [firing:a firing:b]")
	f.eng.resolve(b, f.clk.Now())
	f.round(time.Minute)
	f.round(time.Minute)
	f.expect(withResolved, "firing [firing:a firing:b]", "firing [resolved:a firing:b]", "resolved [resolved:b]")
	f.expect(without, "firing [firing:a firing:b]")

	// The same alert firing again is a new episode: both channels hear of it.
	f.eng.fire(f.clk.Now(), "alertname", "Disk", "host", "a")
	f.round(time.Minute)
	f.expect(without, "firing [firing:a firing:b]", "firing [firing:a]")
	log, err := f.st.Notifications(context.Background(), store.NotificationFilter{Status: dispatch.StatusSkipped})
	if err != nil || len(log) != 1 || log[0].ChannelName != "without" {
		t.Errorf("skipped entries = %+v (%v), want the all-resolved flush of channel without", log, err)
	}
}

func TestSilence(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupWait: d(0), GroupInterval: d(time.Minute)})
	ctx := context.Background()
	m, _ := alerting.NewMatcher("host", alerting.MatchEqual, "a")
	sl, err := f.st.CreateSilence(ctx, silence.Silence{Matchers: alerting.Matchers{m}, StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedBy: "ops", Comment: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	f.eng.fire(t0, "alertname", "Load", "host", "a")
	f.eng.fire(t0, "alertname", "Load", "host", "b")
	f.round(0)
	f.expect(h, "firing [firing:b]")
	mutes := dispatch.MuteStatus(mustSettings(t, f), mustAlerts(t, f), f.clk.Now())
	fa := alerting.Labels{"alertname": "Load", "host": "a"}.Fingerprint()
	if got := mutes[fa]; !slices.Equal(got.SilencedBy, []int64{sl.ID}) || !got.Muted() {
		t.Errorf("mute status of the silenced alert = %+v, want silenced by %d", got, sl.ID)
	}
	if _, err := f.st.ExpireSilence(ctx, sl.ID, f.clk.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.round(time.Minute)
	f.expect(h, "firing [firing:b]", "firing [firing:a firing:b]")
}

func TestInhibition(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupBy: []string{"alertname"}, GroupWait: d(0), GroupInterval: d(time.Minute)})
	src, _ := alerting.NewMatcher("alertname", alerting.MatchEqual, "HostDown")
	dst, _ := alerting.NewMatcher("alertname", alerting.MatchNotEqual, "HostDown")
	if _, err := f.st.CreateInhibitRule(context.Background(), inhibit.Rule{Source: alerting.Matchers{src}, Target: alerting.Matchers{dst}, Equal: []string{"host"}}); err != nil {
		t.Fatal(err)
	}
	down := f.eng.fire(t0, "alertname", "HostDown", "host", "a")
	f.eng.fire(t0, "alertname", "HighCPU", "host", "a")
	f.eng.fire(t0, "alertname", "HighCPU", "host", "b")
	f.round(0)
	got := h.payloads()
	sort.Slice(got, func(i, j int) bool { return got[i].GroupKey < got[j].GroupKey })
	if len(got) != 2 || got[0].summary() != "firing [firing:b]" || got[1].summary() != "firing [firing:a]" {
		t.Fatalf("messages = %+v, want HighCPU for b only and HostDown for a", got)
	}
	mutes := dispatch.MuteStatus(mustSettings(t, f), mustAlerts(t, f), f.clk.Now())
	if m := mutes[alerting.Labels{"alertname": "HighCPU", "host": "a"}.Fingerprint()]; m.InhibitedBy != down.Fingerprint {
		t.Errorf("mute status = %+v, want inhibited by %s", m, down.Fingerprint)
	}
	f.eng.resolve(down, f.clk.Now())
	f.round(time.Minute)
	if n := len(h.payloads()); n != 4 {
		t.Errorf("after the host came back: %d messages, want 4 (HostDown resolved, HighCPU for a)", n)
	}
}

func TestAcknowledgeStopsRepeats(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupWait: d(0), GroupInterval: d(time.Minute), RepeatInterval: d(time.Hour)})
	a := f.eng.fire(t0, "alertname", "Down", "host", "a")
	f.round(0)
	if err := f.st.Acknowledge(context.Background(), a.Fingerprint, a.StartsAt, "ops", "on it", f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	f.round(time.Hour)
	f.round(time.Hour)
	f.expect(h, "firing [firing:a]") // no repeats while acknowledged
	f.eng.resolve(a, f.clk.Now())
	f.round(time.Minute)
	f.eng.fire(f.clk.Now(), "alertname", "Down", "host", "a")
	f.round(time.Minute)
	f.round(time.Hour)
	f.expect(h, "firing [firing:a]", "resolved [resolved:a]", "firing [firing:a]", "firing [firing:a]") // fired again: repeats again
}

func TestRetriesRecorded(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupWait: d(0), GroupInterval: d(time.Minute)})
	f.eng.fire(t0, "alertname", "Down", "host", "a")
	h.failNext(2)
	f.round(0)
	f.expect(h, "firing [firing:a]")
	log, err := f.st.Notifications(context.Background(), store.NotificationFilter{})
	if err != nil || len(log) != 1 {
		t.Fatalf("log = %+v, %v", log, err)
	}
	n := log[0]
	if n.Status != dispatch.StatusSent || n.Attempts != 3 || len(n.AttemptList) != 3 || !n.AttemptList[0].Retryable ||
		n.AttemptList[2].Error != "" || n.AttemptList[1].At.Sub(n.AttemptList[0].At) != time.Second {
		t.Errorf("logged notification = %+v", n)
	}

	// Every attempt failing: the notification fails and the next flush tries again.
	f.eng.fire(f.clk.Now(), "alertname", "Down", "host", "b")
	h.failNext(3)
	f.round(time.Minute)
	failed, _ := f.st.Notifications(context.Background(), store.NotificationFilter{Status: dispatch.StatusFailed})
	if len(failed) != 1 || failed[0].Attempts != 3 || failed[0].Error == "" {
		t.Fatalf("failed notifications = %+v", failed)
	}
	f.round(time.Minute)
	f.expect(h, "firing [firing:a]", "firing [firing:a firing:b]")
}

func TestNotLeaderCannotSend(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupWait: d(0)})
	f.eng.fire(t0, "alertname", "Down", "host", "a")
	_, err := f.d.Round(context.Background(), f.lease.Term()-1)
	if err == nil || !errors.Is(err, dispatch.ErrNotLeader) {
		t.Fatalf("round under an old term = %v, want ErrNotLeader", err)
	}
	f.expect(h)
}

func mustSettings(t *testing.T, f *fixture) dispatch.Settings {
	t.Helper()
	st, err := f.st.NotifySettings(context.Background(), f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustAlerts(t *testing.T, f *fixture) []alerting.Alert {
	t.Helper()
	a, err := f.eng.ActiveAlerts(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGroupedPayloadExactly checks the whole webhook body of a grouped message
// with a firing and a resolved alert against the golden file.
func TestGroupedPayloadExactly(t *testing.T) {
	f := newFixture(t, dispatch.Config{ExternalURL: "http://amas.example.com"})
	h := newHook(t)
	team, _ := alerting.NewMatcher("team", alerting.MatchEqual, "db")
	f.routes(dispatch.Route{GroupBy: []string{"alertname"}, GroupWait: d(time.Minute), GroupInterval: d(time.Minute), Routes: []dispatch.Route{
		{Matchers: alerting.Matchers{team}, Channels: []int64{f.channel("db-oncall", h, true)}, GroupBy: []string{"alertname", "cluster"}},
	}})
	a := f.eng.fire(t0, "alertname", "ReplicationLag", "team", "db", "cluster", "c1", "host", "db-1", "severity", "critical")
	f.eng.fire(t0, "alertname", "ReplicationLag", "team", "db", "cluster", "c1", "host", "db-2", "severity", "critical")
	f.eng.fire(t0, "alertname", "ReplicationLag", "team", "web", "cluster", "c1", "host", "web-1") // root: no channel
	f.round(0)
	f.round(time.Minute)
	f.eng.resolve(a, t0.Add(90*time.Second))
	f.round(time.Minute)
	bodies := h.bodies()
	if len(bodies) != 2 {
		t.Fatalf("receiver got %d messages, want 2", len(bodies))
	}
	var out bytes.Buffer
	for _, b := range bodies {
		if err := json.Indent(&out, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n")
	}
	golden(t, "grouped_webhook.json", out.Bytes())
}

// TestStopDuringBackoffCountsAsNotSent: a dispatcher stopped between attempts
// leaves the message failed, so the next flush (or leader) sends it.
func TestStopDuringBackoffCountsAsNotSent(t *testing.T) {
	f := newFixture(t, dispatch.Config{})
	h := newHook(t)
	f.routes(dispatch.Route{Channels: []int64{f.channel("ops", h, true)}, GroupWait: d(0), GroupInterval: d(time.Minute)})
	stopping := dispatch.New(dispatch.Deps{Alerts: f.eng, Settings: f.st, Log: f.st, Leader: f.st,
		Sleep: func(context.Context, time.Duration) bool { return false }},
		dispatch.Config{Now: f.clk.Now, Retry: dispatch.RetryPolicy{Attempts: 3}})
	f.eng.fire(t0, "alertname", "Down", "host", "a")
	h.failNext(1)
	if _, err := stopping.Round(context.Background(), f.lease.Term()); err != nil {
		t.Fatal(err)
	}
	log, err := f.st.Notifications(context.Background(), store.NotificationFilter{})
	if err != nil || len(log) != 1 || log[0].Status != dispatch.StatusFailed || len(log[0].AttemptList) != 1 {
		t.Fatalf("log = %+v, %v; want one failed notification with its one attempt", log, err)
	}
	f.round(time.Minute)
	f.expect(h, "firing [firing:a]")
}
