package notifiers

import (
	"maps"
	"slices"
	"time"

	"github.com/amas-eye/amas/alerting"
)

// Message is one notification of an aggregation group: what templates see and
// what the webhook body carries (Alertmanager's template data).
type Message struct {
	Receiver          string
	Status            string // "firing" when any alert fires, else "resolved"
	Alerts            []MessageAlert
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	GroupKey          string
	// TruncatedAlerts is how many alerts a channel with a limit left out.
	TruncatedAlerts int
}

// MessageAlert is one alert of a message.
type MessageAlert struct {
	Status       string // "firing" or "resolved"
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
	Fingerprint  string
	Severity     string
	Value        float64
	Threshold    float64
	Acknowledged bool
}

// Firing returns the firing alerts of the message.
func (m *Message) Firing() []MessageAlert { return m.withStatus("firing") }

// Resolved returns the resolved alerts of the message.
func (m *Message) Resolved() []MessageAlert { return m.withStatus("resolved") }

func (m *Message) withStatus(s string) []MessageAlert {
	var out []MessageAlert
	for _, a := range m.Alerts {
		if a.Status == s {
			out = append(out, a)
		}
	}
	return out
}

// NewMessage builds the message of a group's alerts. acked holds the
// fingerprints whose current episode is acknowledged.
func NewMessage(receiver, groupKey, externalURL string, groupLabels alerting.Labels, alerts []alerting.Alert, acked map[string]bool) *Message {
	m := &Message{
		Receiver: receiver, Status: "resolved", GroupKey: groupKey, ExternalURL: externalURL,
		GroupLabels: maps.Clone(map[string]string(groupLabels)),
	}
	if m.GroupLabels == nil {
		m.GroupLabels = map[string]string{}
	}
	for _, a := range alerts {
		status := "firing"
		if a.Resolved() {
			status = "resolved"
		} else {
			m.Status = "firing"
		}
		m.Alerts = append(m.Alerts, MessageAlert{
			Status: status, Labels: cloneOrEmpty(a.Labels), Annotations: cloneOrEmpty(a.Annotations),
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
			Severity: string(a.Severity), Value: a.Value, Threshold: a.Threshold, Acknowledged: acked[a.Fingerprint],
		})
	}
	m.CommonLabels = common(m.Alerts, func(a MessageAlert) map[string]string { return a.Labels })
	m.CommonAnnotations = common(m.Alerts, func(a MessageAlert) map[string]string { return a.Annotations })
	return m
}

// Truncate keeps the first n alerts (n > 0) and counts the others.
func (m *Message) Truncate(n int) *Message {
	if n <= 0 || len(m.Alerts) <= n {
		return m
	}
	c := *m
	c.Alerts = m.Alerts[:n]
	c.TruncatedAlerts = len(m.Alerts) - n
	return &c
}

func cloneOrEmpty[M ~map[string]string](m M) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(map[string]string(m))
}

// common returns the pairs every alert shares.
func common(alerts []MessageAlert, get func(MessageAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	for k, v := range get(alerts[0]) {
		out[k] = v
	}
	for _, a := range alerts[1:] {
		pairs := get(a)
		for _, k := range slices.Collect(maps.Keys(out)) {
			if pairs[k] != out[k] {
				delete(out, k)
			}
		}
	}
	return out
}

// SampleMessage is the message previews and testChannel render: one firing and
// one resolved alert of a made-up group, or the alerts given.
func SampleMessage(receiver string, now time.Time, alerts []alerting.Alert) *Message {
	if len(alerts) == 0 {
		start := now.Add(-10 * time.Minute).UTC().Truncate(time.Second)
		alerts = []alerting.Alert{
			{
				RuleName: "HighCPU", State: alerting.StateFiring, Severity: alerting.SeverityCritical,
				Labels:      alerting.Labels{"alertname": "HighCPU", "severity": "critical", "host": "web-1"},
				Annotations: map[string]string{"summary": "CPU at 97% on web-1", "description": "avg(cpu.usage) over 5m is 97, above 90"},
				Value:       97, Threshold: 90, StartsAt: start, GeneratorURL: "/alerts/rules/1",
			},
			{
				RuleName: "HighCPU", State: alerting.StateResolved, Severity: alerting.SeverityCritical,
				Labels:      alerting.Labels{"alertname": "HighCPU", "severity": "critical", "host": "web-2"},
				Annotations: map[string]string{"summary": "CPU at 95% on web-2", "description": "avg(cpu.usage) over 5m is 95, above 90"},
				Value:       95, Threshold: 90, StartsAt: start, EndsAt: start.Add(5 * time.Minute), GeneratorURL: "/alerts/rules/1",
			},
		}
	}
	for i := range alerts {
		if alerts[i].Fingerprint == "" {
			alerts[i].Fingerprint = alerts[i].Labels.Fingerprint()
		}
	}
	return NewMessage(receiver, `{}:{alertname="HighCPU"}`, "", alerting.Labels{"alertname": alerts[0].Labels["alertname"]}, alerts, nil)
}
