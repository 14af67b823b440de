// Package inhibit mutes alerts while another, more fundamental alert fires, as
// Alertmanager's inhibition rules do: while a host-down alert fires, the other
// alerts of that host are inhibited.
package inhibit

import (
	"fmt"

	"github.com/amas-eye/amas/alerting"
)

// Rule mutes every alert matching Target while an alert matching Source fires
// whose Equal labels have the same values (a label missing on both counts as
// equal, as in Alertmanager).
type Rule struct {
	ID        int64
	Source    alerting.Matchers
	Target    alerting.Matchers
	Equal     []string
	Comment   string
	CreatedBy string
}

// Validate checks a rule before it is stored; the errors name the field.
func (r Rule) Validate() error {
	if len(r.Source) == 0 {
		return fmt.Errorf("inhibition rule: at least one source matcher is needed")
	}
	if len(r.Target) == 0 {
		return fmt.Errorf("inhibition rule: at least one target matcher is needed")
	}
	if err := r.Source.Compile(); err != nil {
		return fmt.Errorf("inhibition rule: source: %w", err)
	}
	if err := r.Target.Compile(); err != nil {
		return fmt.Errorf("inhibition rule: target: %w", err)
	}
	for _, l := range r.Equal {
		if !alerting.ValidLabelName(l) {
			return fmt.Errorf("inhibition rule: equal label %q is not a valid label name", l)
		}
	}
	return nil
}

// Inhibitor answers, for one set of alerts, which of them are inhibited.
type Inhibitor struct {
	rules   []Rule
	sources [][]alerting.Alert // per rule: the firing alerts matching its source
}

// New indexes the firing alerts that can inhibit others under rules.
func New(rules []Rule, alerts []alerting.Alert) *Inhibitor {
	in := &Inhibitor{rules: rules, sources: make([][]alerting.Alert, len(rules))}
	for i, r := range rules {
		for _, a := range alerts {
			if a.State == alerting.StateFiring && r.Source.Matches(a.Labels) {
				in.sources[i] = append(in.sources[i], a)
			}
		}
	}
	return in
}

// InhibitedBy returns the fingerprint of a firing alert that inhibits a, and the
// ID of the rule that lets it, or ok false. An alert never inhibits itself, and an
// alert that matches both sides of a rule is only inhibited by a source that does
// not (so that two such alerts do not mute each other).
func (in *Inhibitor) InhibitedBy(a alerting.Alert) (source string, rule int64, ok bool) {
	for i, r := range in.rules {
		if !r.Target.Matches(a.Labels) {
			continue
		}
		bothSides := r.Source.Matches(a.Labels)
		for _, s := range in.sources[i] {
			if s.Fingerprint == a.Fingerprint || !equal(r.Equal, s.Labels, a.Labels) {
				continue
			}
			if bothSides && r.Target.Matches(s.Labels) {
				continue
			}
			return s.Fingerprint, r.ID, true
		}
	}
	return "", 0, false
}

func equal(names []string, a, b alerting.Labels) bool {
	for _, n := range names {
		if a[n] != b[n] {
			return false
		}
	}
	return true
}
