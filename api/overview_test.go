package api

import (
	"context"
	"testing"
	"time"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/store"
)

// TestOverviewFields checks the overview page's fields end to end on a registry
// of two agents, one of them silent, and fresh CPU samples.
func TestOverviewFields(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := time.Now()
	for _, a := range []store.Agent{
		{Host: "web01", HeartbeatInterval: 30 * time.Second, LastSeen: now},
		{Host: "web02", HeartbeatInterval: 30 * time.Second, LastSeen: now.Add(-time.Hour)},
	} {
		if err := f.st.RecordHeartbeat(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	f.writeSamples("cluster.cpu.usage", "web01", now, 0.25)
	f.writeSamples("cluster.cpu.usage", "web02", now.Add(-time.Minute), 0.75)

	r := f.postAs(auth.RoleViewer, `{
		overview { healthScore alertPoints hostPoints hostCounts { total ok alerting silent }
		           hosts { host status } openAlerts { severity count } }
		alertTrend { raised resolved }
		topHosts(resource: CPU, limit: 1) { host value unit }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	type out struct {
		Overview struct {
			HealthScore, AlertPoints, HostPoints float64
			HostCounts                           struct{ Total, Ok, Alerting, Silent int }
			Hosts                                []struct{ Host, Status string }
			OpenAlerts                           []struct {
				Severity string
				Count    int
			}
		}
		AlertTrend []struct{ Raised, Resolved int }
		TopHosts   []struct {
			Host, Unit string
			Value      float64
		}
	}
	got := decode[out](t, r)
	o := got.Overview
	// No rules: nothing off for alerts; one host of two silent: 20 off.
	if o.HealthScore != 80 || o.AlertPoints != 0 || o.HostPoints != 20 {
		t.Errorf("score %v (alerts %v, hosts %v), want 80 (0, 20)", o.HealthScore, o.AlertPoints, o.HostPoints)
	}
	if o.HostCounts.Total != 2 || o.HostCounts.Ok != 1 || o.HostCounts.Silent != 1 {
		t.Errorf("host counts = %+v", o.HostCounts)
	}
	if len(o.Hosts) != 2 || o.Hosts[0].Host != "web02" || o.Hosts[0].Status != "SILENT" || o.Hosts[1].Status != "OK" {
		t.Errorf("hosts = %+v, want web02 SILENT then web01 OK", o.Hosts)
	}
	if len(o.OpenAlerts) != 3 || o.OpenAlerts[0].Severity != "critical" || o.OpenAlerts[0].Count != 0 {
		t.Errorf("open alerts = %+v, want critical, warning, info at 0", o.OpenAlerts)
	}
	if len(got.AlertTrend) < 24 || len(got.AlertTrend) > 25 {
		t.Errorf("trend has %d hours, want the last 24", len(got.AlertTrend))
	}
	if len(got.TopHosts) != 1 || got.TopHosts[0].Host != "web02" || got.TopHosts[0].Value != 75 || got.TopHosts[0].Unit != "percent" {
		t.Errorf("top hosts = %+v, want web02 at 75 percent", got.TopHosts)
	}

	if r := f.postAs(auth.RoleIngest, `{ overview { healthScore } }`, nil); r.code() != CodeForbidden {
		t.Errorf("an ingest token read the overview: %+v", r)
	}
	if r := f.postAs(auth.RoleViewer, `{ alertTrend(from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z") { hour } }`, nil); r.code() != CodeBadUserInput {
		t.Errorf("a reversed trend range answered %+v, want BAD_USER_INPUT", r)
	}
}
