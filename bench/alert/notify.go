// The notification half of the benchmark: notifications per second through the
// webhook channel, one dispatch round that flushes -groups aggregation groups
// (one alert each), through routing, the notification log in PostgreSQL (a log
// read, the fenced insert before the send, the attempt record after it) and the
// Alertmanager payload, to a local httptest receiver. The baseline, measured in
// the same run, POSTs the same payloads straight to the same receiver with as
// many concurrent senders and no log.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

type notifyOptions struct {
	groups      int
	concurrency int
	keep        bool
	cpuProfile  string // of the dispatcher's round
}

// alertList is the engine's output for the benchmark: a fixed set of alerts.
type alertList []alerting.Alert

func (l alertList) ActiveAlerts(context.Context, time.Time) ([]alerting.Alert, error) { return l, nil }

// runNotify prints the notification table and returns the dispatcher's rate.
func runNotify(ctx context.Context, o notifyOptions) (float64, error) {
	db, err := storetest.Create(ctx, "bench_notify")
	if err != nil {
		return 0, err
	}
	if !o.keep {
		defer db.Drop(context.Background())
	}
	if err := storetest.Migrate(ctx, db.URL); err != nil {
		return 0, err
	}
	st, err := store.Open(ctx, db.URL)
	if err != nil {
		return 0, err
	}
	defer st.Close()

	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		received.Add(1)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2}, Timeout: 10 * time.Second}

	ch, err := st.CreateChannel(ctx, notifiers.Channel{Name: "bench", Type: "webhook", Secrets: map[string]string{"url": srv.URL}, SendResolved: true})
	if err != nil {
		return 0, err
	}
	zero := time.Duration(0)
	if err := st.SetRoutes(ctx, dispatch.Route{Channels: []int64{ch.ID}, GroupBy: []string{"alertname", "host"}, GroupWait: &zero}, "bench"); err != nil {
		return 0, err
	}
	now := time.Now()
	alerts := make(alertList, o.groups)
	for i := range alerts {
		l := alerting.Labels{"alertname": "HostDown", "host": fmt.Sprintf("host-%05d", i), "severity": "critical"}
		alerts[i] = alerting.Alert{RuleID: 1, RuleName: "HostDown", Labels: l, Fingerprint: l.Fingerprint(),
			Annotations: map[string]string{"summary": "host-" + l["host"] + " is down"},
			State:       alerting.StateFiring, Severity: alerting.SeverityCritical, StartsAt: now.Add(-time.Minute), UpdatedAt: now}
	}

	// Baseline: the same payloads, POSTed directly.
	bodies := make([][]byte, len(alerts))
	for i, a := range alerts {
		msg := notifiers.NewMessage("bench", `{}:{alertname="HostDown", host="`+a.Labels["host"]+`"}`, "",
			alerting.Labels{"alertname": "HostDown", "host": a.Labels["host"]}, []alerting.Alert{a}, nil)
		if bodies[i], err = json.Marshal(notifiers.WebhookPayload(msg)); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := postAll(ctx, client, srv.URL, bodies, o.concurrency); err != nil {
		return 0, fmt.Errorf("baseline: %w", err)
	}
	baseline := float64(len(bodies)) / time.Since(start).Seconds()

	// The dispatcher: one round flushes every group.
	received.Store(0)
	d := dispatch.New(dispatch.Deps{Alerts: alerts, Settings: st, Log: st, Leader: st,
		NewSender: func(c notifiers.Channel) (notifiers.Sender, error) {
			return notifiers.New(c, notifiers.Deps{HTTP: client})
		}},
		dispatch.Config{Concurrency: o.concurrency, Now: func() time.Time { return now }})
	lease, err := st.TryLeadDispatch(ctx, "bench")
	if err != nil || lease == nil {
		return 0, fmt.Errorf("lead: %v", err)
	}
	defer lease.Release()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
	}
	start = time.Now()
	_, err = d.Round(ctx, lease.Term())
	elapsed := time.Since(start)
	pprof.StopCPUProfile()
	if err != nil {
		return 0, err
	}
	if n := received.Load(); n != int64(o.groups) {
		return 0, fmt.Errorf("receiver got %d notifications, want %d", n, o.groups)
	}
	rate := float64(o.groups) / elapsed.Seconds()
	sent, err := st.Notifications(ctx, store.NotificationFilter{Status: dispatch.StatusSent, Limit: o.groups + 1})
	if err != nil {
		return 0, err
	}
	if len(sent) != o.groups {
		return 0, fmt.Errorf("log holds %d sent notifications, want %d", len(sent), o.groups)
	}

	fmt.Printf("%d groups, one alert each, %d concurrent, webhook to a local httptest receiver\n\n", o.groups, o.concurrency)
	fmt.Printf("%-48s %14s %8s\n", "path", "notifications/s", "vs raw")
	fmt.Printf("%-48s %14.0f %8.2f\n", "raw HTTP POST of the same payloads (baseline)", baseline, 1.0)
	fmt.Printf("%-48s %14.0f %8.2f\n\n", "dispatcher: route, group, log, send, record", rate, rate/baseline)
	return rate, nil
}

// postAll POSTs every body with n concurrent senders.
func postAll(ctx context.Context, client *http.Client, url string, bodies [][]byte, n int) error {
	eg, ctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	next := 0
	for range n {
		eg.Go(func() error {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(bodies) {
					return nil
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("answer %s", resp.Status)
				}
			}
		})
	}
	return eg.Wait()
}
