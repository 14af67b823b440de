package overview

import (
	"context"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/store"
)

func TestPointsAndScore(t *testing.T) {
	for _, tc := range []struct {
		name               string
		ruleWeight, firing float64
		notOK, hosts       int
		alertPts, hostPts  float64
		score              float64
	}{
		{name: "nothing configured", score: 100},
		{name: "all quiet", ruleWeight: 9, hosts: 4, score: 100},
		{name: "one critical rule of three firing", ruleWeight: 9, firing: 3, hosts: 4, alertPts: 20, score: 80},
		{name: "one host of four not ok", ruleWeight: 9, notOK: 1, hosts: 4, hostPts: 10, score: 90},
		{name: "everything down", ruleWeight: 6, firing: 6, notOK: 2, hosts: 2, alertPts: 60, hostPts: 40, score: 0},
		{name: "rounded to one decimal", ruleWeight: 7, firing: 1, hosts: 3, notOK: 1, alertPts: 60.0 / 7, hostPts: 40.0 / 3, score: 78.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, h := Points(tc.ruleWeight, tc.firing, tc.notOK, tc.hosts)
			if a != tc.alertPts || h != tc.hostPts {
				t.Fatalf("points = %v, %v; want %v, %v", a, h, tc.alertPts, tc.hostPts)
			}
			if got := Score(a, h); got != tc.score {
				t.Fatalf("score = %v, want %v", got, tc.score)
			}
		})
	}
}

// figures is a fixed state of the registry and the alerts.
type figures struct {
	agents        []store.Agent
	alertingHosts []string
	open          map[alerting.Severity]int
	total, firing float64
}

func (f figures) Agents(context.Context) ([]store.Agent, error)   { return f.agents, nil }
func (f figures) AlertingHosts(context.Context) ([]string, error) { return f.alertingHosts, nil }
func (f figures) RuleWeights(context.Context) (float64, float64, error) {
	return f.total, f.firing, nil
}
func (f figures) OpenAlertsBySeverity(context.Context) (map[alerting.Severity]int, error) {
	return f.open, nil
}

func TestSummarize(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	agent := func(host string, lastSeen time.Duration) store.Agent {
		return store.Agent{Host: host, HeartbeatInterval: 30 * time.Second, LastSeen: now.Add(-lastSeen)}
	}
	f := figures{
		agents: []store.Agent{
			agent("web01", 10*time.Second),
			agent("web02", 5*time.Minute), // missed more than 3 heartbeats
			agent("db01", 20*time.Second),
			agent("db02", 10*time.Minute), // silent and alerting: alerting wins
		},
		alertingHosts: []string{"db01", "db02", "edge01"}, // edge01 has no agent
		open:          map[alerting.Severity]int{alerting.SeverityCritical: 2, alerting.SeverityWarning: 1},
		total:         6, firing: 3,
	}
	s, err := Summarize(context.Background(), f, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{
		{Host: "db01", Status: HostAlerting, LastSeen: now.Add(-20 * time.Second)},
		{Host: "db02", Status: HostAlerting, LastSeen: now.Add(-10 * time.Minute)},
		{Host: "edge01", Status: HostAlerting},
		{Host: "web02", Status: HostSilent, LastSeen: now.Add(-5 * time.Minute)},
		{Host: "web01", Status: HostOK, LastSeen: now.Add(-10 * time.Second)},
	}
	if len(s.Hosts) != len(want) {
		t.Fatalf("hosts = %+v, want %+v", s.Hosts, want)
	}
	for i := range want {
		if s.Hosts[i] != want[i] {
			t.Errorf("host %d = %+v, want %+v", i, s.Hosts[i], want[i])
		}
	}
	if s.HostCounts[HostOK] != 1 || s.HostCounts[HostAlerting] != 3 || s.HostCounts[HostSilent] != 1 {
		t.Errorf("counts = %v", s.HostCounts)
	}
	// 60 * 3/6 = 30 for alerts, 40 * 4/5 = 32 for hosts.
	if s.AlertPoints != 30 || s.HostPoints != 32 || s.HealthScore != 38 {
		t.Errorf("points %v + %v, score %v; want 30 + 32, 38", s.AlertPoints, s.HostPoints, s.HealthScore)
	}
	if s.OpenAlerts[alerting.SeverityCritical] != 2 {
		t.Errorf("open alerts = %v", s.OpenAlerts)
	}
}
