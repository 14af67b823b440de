package notifiers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var webhookType = Type{
	Name:  "webhook",
	Title: "Webhook (Alertmanager format)",
	Settings: []Setting{
		{Key: "url", Description: "URL the JSON body is POSTed to", Required: true, Secret: true},
		{Key: "bearer_token", Description: "sent as Authorization: Bearer <token>", Secret: true},
		{Key: "max_alerts", Description: "most alerts in one body, 0 for all; the others are counted in truncatedAlerts", Default: "0"},
	},
	build: newWebhook,
}

// webhookPayload is Alertmanager's webhook body, version 4, field for field, so
// that receivers written for Alertmanager work unchanged.
type webhookPayload struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []webhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

type webhook struct {
	client    *http.Client
	url       string
	token     string
	maxAlerts int
}

func newWebhook(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	u := get("url")
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, fmt.Errorf("webhook channel: url must be an http:// or https:// URL")
	}
	n, err := strconv.Atoi(get("max_alerts"))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("webhook channel: max_alerts %q must be a whole number, 0 or more", get("max_alerts"))
	}
	return &webhook{client: deps.HTTP, url: u, token: get("bearer_token"), maxAlerts: n}, nil
}

// WebhookPayload builds the Alertmanager version 4 body of msg.
func WebhookPayload(msg *Message) any {
	p := webhookPayload{
		Receiver: msg.Receiver, Status: msg.Status, Alerts: make([]webhookAlert, 0, len(msg.Alerts)),
		GroupLabels: msg.GroupLabels, CommonLabels: msg.CommonLabels, CommonAnnotations: msg.CommonAnnotations,
		ExternalURL: msg.ExternalURL, Version: "4", GroupKey: msg.GroupKey, TruncatedAlerts: uint64(msg.TruncatedAlerts),
	}
	for _, a := range msg.Alerts {
		p.Alerts = append(p.Alerts, webhookAlert{
			Status: a.Status, Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt,
			GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
		})
	}
	return p
}

func (w *webhook) Send(ctx context.Context, msg *Message) error {
	var header http.Header
	if w.token != "" {
		header = http.Header{"Authorization": {"Bearer " + w.token}}
	}
	_, err := postJSON(ctx, w.client, w.url, WebhookPayload(msg.Truncate(w.maxAlerts)), header)
	return err
}
