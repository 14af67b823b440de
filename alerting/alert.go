// Package alerting holds the types shared by the alert engine (rules and their
// evaluation, alerting/engine) and the notification side (routing, grouping,
// silences, inhibition and channels, alerting/dispatch and alerting/notifiers).
// The engine produces Alerts; the dispatcher consumes them.
package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Severity is how urgent an alert is; a rule has a threshold per severity.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Rank orders severities, critical highest; unknown ones rank lowest.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// State is where one alert instance (one rule, one label set) stands.
type State string

const (
	StateInactive State = "inactive" // condition false
	StatePending  State = "pending"  // condition true, for not yet elapsed
	StateFiring   State = "firing"   // condition held for the rule's for
	StateResolved State = "resolved" // was firing, condition false again
	StateNoData   State = "nodata"   // the query found nothing and the rule's no-data policy says so
)

// Labels identify an alert instance: the rule's labels, the group's tags,
// alertname and severity.
type Labels map[string]string

// Fingerprint is a stable identity of the label set, the same on every replica.
func (l Labels) Fingerprint() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(l[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// String renders the labels as {a="1", b="2"}, sorted by key.
func (l Labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=\"" + l[k] + "\"")
	}
	b.WriteByte('}')
	return b.String()
}

// Alert is one alert instance as the engine reports it after an evaluation that
// changed its state, or as it stands while firing (for repeats).
type Alert struct {
	RuleID       int64
	RuleName     string
	Fingerprint  string // Labels.Fingerprint()
	Labels       Labels
	Annotations  map[string]string // summary, description, runbook_url, ... already rendered
	State        State
	Severity     Severity
	Value        float64   // the reduced value that was compared
	Threshold    float64   // the threshold of Severity
	StartsAt     time.Time // when it started firing (or pending, while pending)
	EndsAt       time.Time // when it resolved; zero while firing
	UpdatedAt    time.Time // the evaluation that produced this
	GeneratorURL string    // link to the rule in the web app
}

// Resolved reports whether the alert is over.
func (a Alert) Resolved() bool { return a.State == StateResolved || a.State == StateInactive }
