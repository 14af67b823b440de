package dispatch

import (
	"context"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/silence"
)

// Mute tells how notifications of one alert stand: the active silences that
// mute it, the firing alert (fingerprint) and inhibition rule that inhibit it,
// and whether its current firing episode is acknowledged.
type Mute struct {
	SilencedBy    []int64
	InhibitedBy   string
	InhibitRuleID int64
	Acknowledged  bool
}

// Muted reports whether notifications of the alert are held back.
func (m Mute) Muted() bool { return len(m.SilencedBy) > 0 || m.InhibitedBy != "" }

// MuteStatus is the mute state of each of alerts, by fingerprint, for the alerts
// API: silenced and inhibited alerts stay visible, marked. Inhibition is judged
// among alerts, so pass every open alert, not a filtered page.
func MuteStatus(st Settings, alerts []alerting.Alert, now time.Time) map[string]Mute {
	in := inhibit.New(st.InhibitRules, alerts)
	rs := roundState{acks: st.Acks}
	out := make(map[string]Mute, len(alerts))
	for _, a := range alerts {
		m := Mute{SilencedBy: silence.Matching(st.Silences, a.Labels, now), Acknowledged: !a.Resolved() && rs.acked(a)}
		if src, rule, ok := in.InhibitedBy(a); ok {
			m.InhibitedBy, m.InhibitRuleID = src, rule
		}
		out[a.Fingerprint] = m
	}
	return out
}

// Muter answers MuteStatus against the stored settings (for the resolvers).
type Muter struct {
	Settings SettingsSource
	Alerts   AlertSource
	Now      func() time.Time
}

// Status reads the settings and every open alert, and returns the mute state of
// those of fingerprints (all open alerts when fingerprints is empty).
func (m *Muter) Status(ctx context.Context, fingerprints ...string) (map[string]Mute, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	st, err := m.Settings.NotifySettings(ctx, now)
	if err != nil {
		return nil, err
	}
	alerts, err := m.Alerts.ActiveAlerts(ctx, now.Add(-defaultResolvedRetention))
	if err != nil {
		return nil, err
	}
	all := MuteStatus(st, alerts, now)
	if len(fingerprints) == 0 {
		return all, nil
	}
	out := make(map[string]Mute, len(fingerprints))
	for _, fp := range fingerprints {
		if mu, ok := all[fp]; ok {
			out[fp] = mu
		}
	}
	return out, nil
}
