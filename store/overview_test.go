package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestTopHosts(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	host := func(h string, more ...string) map[string]string {
		tags := map[string]string{"host": h}
		for i := 0; i+1 < len(more); i += 2 {
			tags[more[i]] = more[i+1]
		}
		return tags
	}
	// The newest point counts, older ones do not.
	writeTestSeries(t, st, "cluster.cpu.usage", host("a"), tv{time.Minute, 0.9}, tv{2 * time.Minute, 0.2})
	writeTestSeries(t, st, "cluster.cpu.usage", host("b"), tv{2 * time.Minute, 0.5})
	writeTestSeries(t, st, "cluster.cpu.usage", host("c"), tv{2 * time.Minute, 0.7})
	writeTestSeries(t, st, "cluster.cpu.usage", host("stale"), tv{-time.Hour, 1})
	writeTestSeries(t, st, "cluster.cpu.usage", map[string]string{"dc": "x"}, tv{2 * time.Minute, 1}) // no host
	writeTestSeries(t, st, "mem.percent.used", host("a"), tv{2 * time.Minute, 40})
	writeTestSeries(t, st, "mem.percent.used", host("b"), tv{2 * time.Minute, 80})
	// The fullest mount of a host ranks it.
	writeTestSeries(t, st, "df.bytes.percentused", host("a", "mount", "/"), tv{2 * time.Minute, 30})
	writeTestSeries(t, st, "df.bytes.percentused", host("a", "mount", "/data"), tv{2 * time.Minute, 95})
	writeTestSeries(t, st, "df.bytes.percentused", host("b", "mount", "/"), tv{2 * time.Minute, 60})
	// Network: receive + transmit bytes of every interface but lo; packets do not count.
	writeTestSeries(t, st, "cluster.net.dev.receive", host("a", "interface", "eth0", "type", "bytes"), tv{2 * time.Minute, 100})
	writeTestSeries(t, st, "cluster.net.dev.transmit", host("a", "interface", "eth0", "type", "bytes"), tv{2 * time.Minute, 50})
	writeTestSeries(t, st, "cluster.net.dev.receive", host("a", "interface", "lo", "type", "bytes"), tv{2 * time.Minute, 1e9})
	writeTestSeries(t, st, "cluster.net.dev.receive", host("a", "interface", "eth0", "type", "packets"), tv{2 * time.Minute, 1e6})
	writeTestSeries(t, st, "cluster.net.dev.receive", host("b", "interface", "eth0", "type", "bytes"), tv{2 * time.Minute, 120})

	since := queryT0
	for _, tc := range []struct {
		res   store.HostResource
		limit int
		want  []store.HostValue
	}{
		{store.ResourceCPU, 2, []store.HostValue{{"c", 70}, {"b", 50}}},
		{store.ResourceCPU, 5, []store.HostValue{{"c", 70}, {"b", 50}, {"a", 20}}},
		{store.ResourceMemory, 5, []store.HostValue{{"b", 80}, {"a", 40}}},
		{store.ResourceDisk, 5, []store.HostValue{{"a", 95}, {"b", 60}}},
		{store.ResourceNetwork, 5, []store.HostValue{{"a", 150}, {"b", 120}}},
	} {
		t.Run(string(tc.res), func(t *testing.T) {
			got, err := st.TopHosts(ctx, tc.res, since, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Host != tc.want[i].Host || !approx(got[i].Value, tc.want[i].Value) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
	if _, err := st.TopHosts(ctx, "GPU", since, 5); err == nil {
		t.Fatal("an unknown resource was accepted")
	}
}

func approx(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestAlertOverviewFigures(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	critical := createTestRule(t, st, "host down")
	warning, err := st.CreateAlertRule(ctx, store.AlertRuleRecord{
		Name: "disk filling", Spec: json.RawMessage(`{"kind":"threshold","thresholds":{"warning":{"value":80}}}`),
		Interval: 15 * time.Second, Enabled: true,
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// The first test rule has no thresholds in its spec: it weighs as info (1).
	if _, err := st.ClaimAlertLeases(ctx, "a", t0, 10*time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	fire := func(rule store.AlertRuleRecord, host string, sev alerting.Severity, at time.Time) store.AlertInstance {
		in := firing(rule, host, at)
		in.Severity = sev
		in.Labels["severity"] = string(sev)
		in.Fingerprint = in.Labels.Fingerprint()
		return in
	}
	a1 := fire(critical, "db-1", alerting.SeverityCritical, t0)
	a2 := fire(critical, "db-2", alerting.SeverityCritical, t0.Add(time.Minute))
	w1 := fire(warning, "db-1", alerting.SeverityWarning, t0.Add(2*time.Minute))
	commit := func(at time.Time, rule store.AlertRuleRecord, changes []store.StateChange, ins ...store.AlertInstance) {
		t.Helper()
		written, _, err := st.CommitEvaluations(ctx, "a", at, []store.RuleEvaluation{{
			RuleID: rule.ID, RuleVersion: rule.Version, NextEvalAt: at.Add(15 * time.Second),
			Instances: ins, Changes: changes,
		}})
		if err != nil || len(written) != 1 {
			t.Fatalf("commit = %v, %v", written, err)
		}
	}
	commit(t0.Add(time.Minute), critical, []store.StateChange{
		{Fingerprint: a1.Fingerprint, From: alerting.StateInactive},
		{Fingerprint: a2.Fingerprint, From: alerting.StateInactive},
	}, a1, a2)
	commit(t0.Add(2*time.Minute), warning, []store.StateChange{{Fingerprint: w1.Fingerprint, From: alerting.StateInactive}}, w1)
	// An hour later db-2 resolves.
	later := t0.Add(time.Hour + 5*time.Minute)
	a2.State, a2.EndsAt, a2.UpdatedAt = alerting.StateResolved, later, later
	a1.UpdatedAt = later
	if _, err := st.ClaimAlertLeases(ctx, "a", later, time.Minute, 10); err != nil { // the first lease ran out
		t.Fatal(err)
	}
	commit(later, critical, []store.StateChange{{Fingerprint: a2.Fingerprint, From: alerting.StateFiring}}, a1, a2)

	hosts, err := st.AlertingHosts(ctx)
	if err != nil || len(hosts) != 1 || hosts[0] != "db-1" {
		t.Fatalf("alerting hosts = %v, %v; want [db-1]", hosts, err)
	}
	open, err := st.OpenAlertsBySeverity(ctx)
	if err != nil || open[alerting.SeverityCritical] != 1 || open[alerting.SeverityWarning] != 1 {
		t.Fatalf("open alerts = %v, %v", open, err)
	}
	total, firingW, err := st.RuleWeights(ctx)
	// The rules weigh info 1 (no thresholds in its spec) + warning 2, and both fire.
	if err != nil || total != 3 || firingW != 3 {
		t.Fatalf("rule weights = %v, %v, %v; want 3, 3", total, firingW, err)
	}

	trend, err := st.AlertTrend(ctx, t0, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.AlertTrendBucket{
		{Hour: t0, Raised: 3, Critical: 2},
		{Hour: t0.Add(time.Hour), Resolved: 1},
		{Hour: t0.Add(2 * time.Hour)},
	}
	if len(trend) != len(want) {
		t.Fatalf("trend = %+v, want %+v", trend, want)
	}
	for i := range want {
		if trend[i] != want[i] {
			t.Errorf("hour %d = %+v, want %+v", i, trend[i], want[i])
		}
	}
	if _, err := st.AlertTrend(ctx, t0, t0); err == nil {
		t.Error("an empty trend range was accepted")
	}
}
