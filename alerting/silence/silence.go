// Package silence mutes alerts by label matchers for a time window, as
// Alertmanager's silences do. A silenced alert keeps its state and stays visible,
// marked with the silences that mute it; only its notifications are held back.
package silence

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/amas-eye/amas/alerting"
)

// Silence mutes the alerts all its matchers hold for, from StartsAt until EndsAt.
type Silence struct {
	ID        int64
	Matchers  alerting.Matchers
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// State is where a silence stands at a given time.
type State string

const (
	StatePending State = "pending" // StartsAt is still ahead
	StateActive  State = "active"
	StateExpired State = "expired" // EndsAt has passed
)

// State reports the silence's state at now.
func (s Silence) State(now time.Time) State {
	switch {
	case now.Before(s.StartsAt):
		return StatePending
	case now.Before(s.EndsAt):
		return StateActive
	}
	return StateExpired
}

// Validate checks a silence before it is stored; the errors name the field.
func (s Silence) Validate() error {
	if len(s.Matchers) == 0 {
		return fmt.Errorf("silence: at least one matcher is needed (a silence without one would mute everything)")
	}
	if err := s.Matchers.Compile(); err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	if matchesEverything(s.Matchers) {
		return fmt.Errorf("silence: matchers %s match every alert, including one without labels: add one that needs a label value", s.Matchers)
	}
	if s.StartsAt.IsZero() || s.EndsAt.IsZero() {
		return fmt.Errorf("silence: startsAt and endsAt are required")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("silence: endsAt %s must be after startsAt %s",
			s.EndsAt.UTC().Format(time.RFC3339), s.StartsAt.UTC().Format(time.RFC3339))
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		return fmt.Errorf("silence: createdBy is required")
	}
	return nil
}

// matchesEverything reports whether the matchers hold for an alert with no
// labels at all, which Alertmanager refuses too.
func matchesEverything(ms alerting.Matchers) bool { return ms.Matches(alerting.Labels{}) }

// Matching returns the IDs of the silences that are active at now and mute an
// alert with labels, in ascending order.
func Matching(silences []Silence, labels alerting.Labels, now time.Time) []int64 {
	var ids []int64
	for _, s := range silences {
		if s.State(now) == StateActive && s.Matchers.Matches(labels) {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	return ids
}
