package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/alerting/silence"
)

// AlertSource is where the dispatcher reads alerts (store.Store, filled by the
// engine): every firing alert, and those resolved at or after resolvedSince.
type AlertSource interface {
	ActiveAlerts(ctx context.Context, resolvedSince time.Time) ([]alerting.Alert, error)
}

// Settings are what a round needs besides the alerts, read together.
type Settings struct {
	Routes       Route
	Channels     []notifiers.Channel
	Silences     []silence.Silence // those not yet expired
	InhibitRules []inhibit.Rule
	// Acks maps a fingerprint to the starts_at of its acknowledged firing
	// episodes.
	Acks map[string][]time.Time
}

// SettingsSource reads the Settings (store.Store). now decides which silences
// are still of interest.
type SettingsSource interface {
	NotifySettings(ctx context.Context, now time.Time) (Settings, error)
}

// Status is where one logged notification stands.
type Status string

const (
	StatusSending  Status = "sending"  // logged, first attempt under way
	StatusRetrying Status = "retrying" // an attempt failed, another follows
	StatusSent     Status = "sent"
	StatusFailed   Status = "failed"  // every attempt failed, or the failure was permanent
	StatusSkipped  Status = "skipped" // nothing to send (only resolved alerts, send_resolved off)
)

// LogAlert is one alert as a logged notification carried it. StartsAt names the
// firing episode: an alert that resolves and fires again is a new one.
type LogAlert struct {
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"status"`
	StartsAt    time.Time `json:"startsAt"`
}

// LogEntry is one row of the notification log: one message for one group to one
// channel.
type LogEntry struct {
	ID          int64
	GroupKey    string
	ChannelID   int64
	ChannelName string
	ChannelType string
	Status      Status
	Alerts      []LogAlert
	Firing      int
	Resolved    int
	Attempts    int
	Error       string
	Term        int64
	Test        bool
	CreatedAt   time.Time
	FinishedAt  time.Time
}

// LogKey names the notifications of one group to one channel.
type LogKey struct {
	GroupKey  string
	ChannelID int64
}

// Attempt is one try at delivering a logged notification.
type Attempt struct {
	N         int
	At        time.Time
	Duration  time.Duration
	Error     string
	Retryable bool
}

// ErrNotLeader is returned by Log.Begin when term is no longer the current
// leadership term: another replica has taken over.
var ErrNotLeader = errors.New("dispatcher leadership lost")

// Log is the notification log (store.Store).
type Log interface {
	// LastNotifications returns, for each group and channel asked about, the
	// newest entry that did not fail: what the channel was last told. Pairs
	// never notified are absent.
	LastNotifications(ctx context.Context, keys []LogKey) (map[LogKey]LogEntry, error)
	// BeginNotification logs e before it is sent, if term is still the current
	// term (test notifications need none), and returns its ID.
	BeginNotification(ctx context.Context, term int64, e LogEntry) (int64, error)
	// RecordAttempt stores one attempt and the entry's status after it; the same
	// attempt again only changes the status.
	RecordAttempt(ctx context.Context, id int64, a Attempt, status Status) error
}

// Lease is held by the leading dispatcher.
type Lease interface {
	// Term is the leadership term the lease was taken in.
	Term() int64
	// Wait returns after d, or earlier when the engine announces alert changes;
	// an error means the lease is lost.
	Wait(ctx context.Context, d time.Duration) error
	// Release gives the leadership up.
	Release()
}

// Leadership elects the one dispatching replica (store.Store, an advisory lock).
type Leadership interface {
	// TryLeadDispatch returns a Lease, or nil when another replica leads.
	TryLeadDispatch(ctx context.Context, holder string) (Lease, error)
}

func logAlerts(alerts []alerting.Alert) []LogAlert {
	out := make([]LogAlert, len(alerts))
	for i, a := range alerts {
		out[i] = LogAlert{Fingerprint: a.Fingerprint, Status: statusOf(a), StartsAt: a.StartsAt}
	}
	return out
}

func statusOf(a alerting.Alert) string {
	if a.Resolved() {
		return "resolved"
	}
	return "firing"
}

// episode names one firing episode of one alert.
func episode(fp string, startsAt time.Time) string {
	return fp + "@" + startsAt.UTC().Format(time.RFC3339Nano)
}

// sets splits logged alerts into firing and resolved episodes.
func (e LogEntry) sets() (firing, resolved map[string]bool) {
	firing, resolved = map[string]bool{}, map[string]bool{}
	for _, a := range e.Alerts {
		if a.Status == "resolved" {
			resolved[episode(a.Fingerprint, a.StartsAt)] = true
		} else {
			firing[episode(a.Fingerprint, a.StartsAt)] = true
		}
	}
	return firing, resolved
}
