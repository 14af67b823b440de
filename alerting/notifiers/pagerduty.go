package notifiers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"

	"github.com/amas-eye/amas/alerting"
)

var pagerdutyType = Type{
	Name:  "pagerduty",
	Title: "PagerDuty (Events API v2)",
	Settings: []Setting{
		{Key: "routing_key", Description: "the integration key of the PagerDuty service (Events API v2)", Required: true, Secret: true},
		{Key: "url", Description: "Events API v2 address", Default: "https://events.pagerduty.com/v2/enqueue"},
		{Key: "source", Description: "the payload's source; empty: the group labels"},
		{Key: "client_url", Description: "link shown with the incident, e.g. this Amas's address"},
	},
	DefaultTemplate: `{{define "title"}}[{{.Status | upper}}{{if .Firing}}:{{len .Firing}}{{end}}]{{range sortedKeys .GroupLabels}} {{index $.GroupLabels .}}{{end}}{{with .CommonAnnotations.summary}}: {{.}}{{end}}{{end}}
{{define "message"}}{{range .Firing}}{{with .Annotations.summary}}{{.}}{{else}}{{.Labels.alertname}}{{end}} ({{pairs .Labels}})
{{end}}{{end}}`,
	build: newPagerduty,
}

// pagerdutyMaxSummary is the Events API's limit on payload.summary.
const pagerdutyMaxSummary = 1024

type pagerduty struct {
	client    *http.Client
	url       string
	key       string
	source    string
	clientURL string
	template  string
}

func newPagerduty(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	u := get("url")
	if p, err := url.Parse(u); err != nil || p.Host == "" {
		return nil, fmt.Errorf("pagerduty channel: url %q is not an http(s) address", u)
	}
	return &pagerduty{client: deps.HTTP, url: u, key: get("routing_key"),
		source: get("source"), clientURL: get("client_url"), template: ch.Template}, nil
}

type pagerdutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *pagerdutyPayload `json:"payload,omitempty"`
	Client      string            `json:"client"`
	ClientURL   string            `json:"client_url,omitempty"`
}

type pagerdutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	CustomDetails map[string]any `json:"custom_details"`
}

// PagerdutyDedupKey ties every event of one group to one incident: the SHA-256
// of the group key, as Alertmanager does.
func PagerdutyDedupKey(groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
	return hex.EncodeToString(sum[:])
}

func (p *pagerduty) Send(ctx context.Context, msg *Message) error {
	ev := pagerdutyEvent{RoutingKey: p.key, EventAction: "trigger", DedupKey: PagerdutyDedupKey(msg.GroupKey),
		Client: "Amas", ClientURL: p.clientURL}
	if msg.Status == "resolved" {
		ev.EventAction = "resolve"
		_, err := postJSON(ctx, p.client, p.url, ev, nil)
		return err
	}
	r, err := Render(pagerdutyType.Name, p.template, msg)
	if err != nil {
		return err
	}
	source := p.source
	if source == "" {
		source = alerting.Labels(msg.GroupLabels).String()
	}
	ev.Payload = &pagerdutyPayload{
		Summary: truncateBytes(r.Title, pagerdutyMaxSummary), Source: source, Severity: pagerdutySeverity(msg),
		CustomDetails: map[string]any{
			"firing": r.Text, "num_firing": len(msg.Firing()), "num_resolved": len(msg.Resolved()),
			"group_labels": msg.GroupLabels,
		},
	}
	_, err = postJSON(ctx, p.client, p.url, ev, nil)
	return err
}

// pagerdutySeverity is the highest severity among the firing alerts, in
// PagerDuty's words; "error" when none has one PagerDuty knows.
func pagerdutySeverity(msg *Message) string {
	best := alerting.Severity("")
	for _, a := range msg.Firing() {
		if s := alerting.Severity(a.Severity); s.Rank() > best.Rank() {
			best = s
		}
	}
	if best == "" {
		return "error"
	}
	return string(best)
}
