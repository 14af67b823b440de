// Package overview computes the figures of the start page from the agent
// registry and the alert state: hosts by status, open alerts by severity and a
// health score. The old system appended such a document to a collection every
// five minutes; here they are computed when asked, from the current state.
package overview

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/store"
)

// HostStatus is how a host stands on the overview.
type HostStatus string

const (
	HostOK       HostStatus = "OK"       // its agent reports and nothing fires for it
	HostAlerting HostStatus = "ALERTING" // an alert with its host label is firing
	HostSilent   HostStatus = "SILENT"   // its agent missed store.MissedHeartbeats heartbeats
)

// Host is one host of the overview.
type Host struct {
	Host     string
	Status   HostStatus
	LastSeen time.Time // zero for a host known only from its alerts
}

// Summary is the overview page's figures.
type Summary struct {
	HealthScore float64 // 0..100, see Score
	AlertPoints float64 // what firing rules took off the score
	HostPoints  float64 // what hosts not OK took off the score
	Hosts       []Host  // sorted: alerting, silent, ok, then by name
	HostCounts  map[HostStatus]int
	OpenAlerts  map[alerting.Severity]int // firing instances per severity
}

// Figures is what the summary is computed from (store.Store).
type Figures interface {
	Agents(ctx context.Context) ([]store.Agent, error)
	AlertingHosts(ctx context.Context) ([]string, error)
	OpenAlertsBySeverity(ctx context.Context) (map[alerting.Severity]int, error)
	RuleWeights(ctx context.Context) (total, firing float64, err error)
}

// Summarize reads the figures and computes the summary as of now.
func Summarize(ctx context.Context, f Figures, now time.Time) (Summary, error) {
	agents, err := f.Agents(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("overview: %w", err)
	}
	alertingHosts, err := f.AlertingHosts(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("overview: %w", err)
	}
	open, err := f.OpenAlertsBySeverity(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("overview: %w", err)
	}
	total, firing, err := f.RuleWeights(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("overview: %w", err)
	}
	hosts := classifyHosts(agents, alertingHosts, now)
	counts := map[HostStatus]int{HostOK: 0, HostAlerting: 0, HostSilent: 0}
	for _, h := range hosts {
		counts[h.Status]++
	}
	alertPts, hostPts := Points(total, firing, len(hosts)-counts[HostOK], len(hosts))
	return Summary{
		HealthScore: Score(alertPts, hostPts),
		AlertPoints: alertPts, HostPoints: hostPts,
		Hosts: hosts, HostCounts: counts, OpenAlerts: open,
	}, nil
}

// classifyHosts gives every host seen by the registry or named by a firing
// alert its status; a firing alert outranks a silent agent, being what needs
// attention first.
func classifyHosts(agents []store.Agent, alertingHosts []string, now time.Time) []Host {
	byName := map[string]*Host{}
	var hosts []*Host
	for _, a := range agents {
		h := &Host{Host: a.Host, Status: HostOK, LastSeen: a.LastSeen}
		if !a.Up(now) {
			h.Status = HostSilent
		}
		byName[a.Host] = h
		hosts = append(hosts, h)
	}
	for _, name := range alertingHosts {
		h, ok := byName[name]
		if !ok {
			h = &Host{Host: name}
			byName[name] = h
			hosts = append(hosts, h)
		}
		h.Status = HostAlerting
	}
	out := make([]Host, len(hosts))
	for i, h := range hosts {
		out[i] = *h
	}
	rank := map[HostStatus]int{HostAlerting: 0, HostSilent: 1, HostOK: 2}
	slices.SortFunc(out, func(a, b Host) int {
		if d := rank[a.Status] - rank[b.Status]; d != 0 {
			return d
		}
		return cmp.Compare(a.Host, b.Host)
	})
	return out
}

// Points splits what the score loses: up to 60 points for alerts — the weight
// of the firing rules over the weight of all enabled rules (critical 3,
// warning 2, info 1) — and up to 40 for hosts — the share of hosts not OK. No
// rules or no hosts take nothing off, rather than dividing by zero.
func Points(ruleWeight, firingWeight float64, hostsNotOK, hosts int) (alertPts, hostPts float64) {
	if ruleWeight > 0 {
		alertPts = 60 * math.Min(firingWeight/ruleWeight, 1)
	}
	if hosts > 0 {
		hostPts = 40 * float64(hostsNotOK) / float64(hosts)
	}
	return alertPts, hostPts
}

// Score is 100 less both kinds of points, rounded to one decimal.
func Score(alertPts, hostPts float64) float64 {
	return math.Round(math.Max(0, 100-alertPts-hostPts)*10) / 10
}
