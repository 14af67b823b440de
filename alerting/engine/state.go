package engine

import (
	"maps"
	"slices"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
)

// Group is one group's value in one evaluation.
type Group struct {
	Tags  map[string]string
	Value float64
	// HasValue is false when the group has points but no comparable value (a
	// percentage change from an earlier 0 under zero base nodata): no data.
	HasValue bool
}

// input is what one evaluation says about one instance.
type input int

const (
	condFalse input = iota
	condTrue
	noData
)

// Step advances a rule's instances by one evaluation at now, given the groups it
// found. It returns the instances whose rows change (new ones, changed states, and
// the value of every open one) and the state changes among them; prev is not
// modified. The rules:
//
//   - Each group has one instance per severity with a threshold; its condition is
//     the group's value passing that threshold.
//   - inactive/resolved -> pending when the condition holds (-> firing at once when
//     for is 0); pending -> firing once it has held for `for`; pending -> inactive
//     and firing -> resolved when it no longer holds.
//   - No data for a group (a group with an open instance missing from this
//     evaluation, or a group without a comparable value) follows the rule's
//     no-data policy: ok = the condition does not hold, alerting = it holds,
//     nodata = the instance goes to the nodata state. When the evaluation finds no
//     group at all and no open instance carries that, the same policy applies to
//     the rule-level instance (the rule's labels, most urgent severity), created
//     if needed, for alerting and nodata.
//   - An open instance that is no longer one of the rule's (an edit dropped its
//     severity or changed the labels, and its group has data) resolves.
//   - An instance in nodata resolves when data comes back without the condition;
//     with the condition it resumes, keeping the time the condition began to hold
//     before the gap (so it fires at once if that is `for` ago).
func Step(r *rule.Rule, prev map[string]store.AlertInstance, groups []Group, now time.Time) ([]store.AlertInstance, []store.StateChange) {
	s := stepper{r: r, prev: prev, now: now, seen: map[string]bool{}}
	valued := 0
	present := map[string]bool{} // the group keys with a value in this evaluation
	for _, g := range groups {
		if !g.HasValue {
			continue // as if missing: its open instances get the no-data policy below
		}
		valued++
		present[store.GroupKey(g.Tags, r.Query.GroupBy)] = true
		for _, sev := range r.Severities() {
			in := condFalse
			if r.Holds(sev, g.Value) {
				in = condTrue
			}
			s.apply(r.AlertLabels(g.Tags, sev), sev, g, in)
		}
	}
	ruleLevel := r.AlertLabels(nil, topSeverity(r))
	ruleLevelFP := ruleLevel.Fingerprint()
	carried := 0 // open instances that carry the no-data signal
	for _, fp := range slices.Sorted(maps.Keys(prev)) {
		old := prev[fp]
		if s.seen[fp] || !open(old.State) {
			continue
		}
		in := noData
		_, severityKept := r.Thresholds[old.Severity]
		switch {
		case fp == ruleLevelFP && valued > 0:
			in = condFalse // the rule has data again
		case !severityKept || present[store.GroupKey(old.Labels, r.Query.GroupBy)]:
			// The rule was edited (a severity dropped, labels changed): its group
			// has data, this instance is just no longer one of the rule's.
			in = condFalse
		}
		s.apply(old.Labels, old.Severity, Group{}, in)
		carried++
	}
	if valued == 0 && carried == 0 && r.NoData != rule.NoDataOK {
		s.apply(ruleLevel, topSeverity(r), Group{}, noData)
	}
	return s.out, s.changes
}

func topSeverity(r *rule.Rule) alerting.Severity {
	if sevs := r.Severities(); len(sevs) > 0 {
		return sevs[0]
	}
	return alerting.SeverityWarning
}

// open reports whether an instance in state st is part of an ongoing alert.
func open(st alerting.State) bool {
	return st == alerting.StatePending || st == alerting.StateFiring || st == alerting.StateNoData
}

type stepper struct {
	r       *rule.Rule
	prev    map[string]store.AlertInstance
	now     time.Time
	seen    map[string]bool
	out     []store.AlertInstance
	changes []store.StateChange
}

// apply moves one instance; in == noData is first mapped through the policy.
func (s *stepper) apply(labels alerting.Labels, sev alerting.Severity, g Group, in input) {
	fp := labels.Fingerprint()
	if s.seen[fp] {
		return
	}
	s.seen[fp] = true
	old, existed := s.prev[fp]
	if !existed {
		old = store.AlertInstance{Alert: alerting.Alert{State: alerting.StateInactive}}
	}
	if in == noData {
		switch s.r.NoData {
		case rule.NoDataOK:
			in = condFalse
		case rule.NoDataAlerting:
			in = condTrue
		}
	}
	next := old
	next.RuleID, next.RuleName, next.Fingerprint, next.Labels = s.r.ID, s.r.Name, fp, labels
	next.Severity, next.Threshold = sev, s.r.Thresholds[sev].Value
	next.Value, next.HasValue = g.Value, g.HasValue
	next.UpdatedAt = s.now
	next.GeneratorURL = store.RuleURL(s.r.ID)
	s.transition(&next, in)
	if !existed && next.State == alerting.StateInactive {
		return // a group whose condition never held has no instance
	}
	if next.State == old.State && !open(next.State) {
		return // closed and staying closed: nothing to write
	}
	next.Annotations = s.r.RenderAnnotations(rule.TemplateData{
		RuleName: s.r.Name, Value: next.Value, HasValue: next.HasValue, Threshold: next.Threshold, Severity: sev, Labels: labels,
	})
	s.out = append(s.out, next)
	if next.State != old.State {
		s.changes = append(s.changes, store.StateChange{Fingerprint: fp, From: old.State})
	}
}

func (s *stepper) transition(in *store.AlertInstance, what input) {
	now, forD := s.now, s.r.For.D()
	switch what {
	case condTrue:
		switch in.State {
		case alerting.StateFiring:
		case alerting.StatePending, alerting.StateNoData:
			if in.ActiveAt.IsZero() {
				in.ActiveAt = now
			}
			if now.Sub(in.ActiveAt) >= forD {
				s.fire(in)
			} else if in.State == alerting.StateNoData {
				in.State, in.StartsAt, in.EndsAt = alerting.StatePending, in.ActiveAt, time.Time{}
			}
		default: // inactive, resolved
			in.ActiveAt, in.EndsAt = now, time.Time{}
			if forD == 0 {
				s.fire(in)
			} else {
				in.State, in.StartsAt = alerting.StatePending, now
			}
		}
	case condFalse:
		switch in.State {
		case alerting.StatePending:
			in.State, in.ActiveAt = alerting.StateInactive, time.Time{}
		case alerting.StateFiring, alerting.StateNoData:
			in.State, in.ActiveAt, in.EndsAt = alerting.StateResolved, time.Time{}, now
		}
	case noData:
		if in.State != alerting.StateNoData {
			in.State, in.StartsAt, in.EndsAt = alerting.StateNoData, now, time.Time{}
		}
	}
}

func (s *stepper) fire(in *store.AlertInstance) {
	if in.State != alerting.StateFiring {
		in.State, in.StartsAt, in.EndsAt = alerting.StateFiring, s.now, time.Time{}
	}
}
