package notifiers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

var slackType = Type{
	Name:  "slack",
	Title: "Slack (incoming webhook)",
	Settings: []Setting{
		{Key: "webhook_url", Description: "the incoming webhook URL Slack gave (https://hooks.slack.com/services/...)", Required: true, Secret: true},
		{Key: "channel", Description: "channel override, e.g. #alerts (legacy webhooks only)"},
		{Key: "username", Description: "sender name override (legacy webhooks only)"},
	},
	DefaultTemplate: `{{define "title"}}[{{.Status | upper}}{{if .Firing}}:{{len .Firing}}{{end}}]{{range sortedKeys .GroupLabels}} {{index $.GroupLabels .}}{{end}}{{end}}
{{define "message"}}{{range .Alerts}}*{{.Status | upper}}* {{with .Annotations.summary}}{{.}}{{else}}{{.Labels.alertname}}{{end}}{{if .Acknowledged}} (acknowledged){{end}}
{{with .Annotations.description}}{{.}}
{{end}}` + "`{{pairs .Labels}}`" + ` since {{timeFmt .StartsAt}}{{if eq .Status "resolved"}}, resolved {{timeFmt .EndsAt}}{{end}}
{{end}}{{end}}`,
	build: newSlack,
}

type slack struct {
	client            *http.Client
	url               string
	channel, username string
	template          string
}

func newSlack(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	u := get("webhook_url")
	if p, err := url.Parse(u); err != nil || p.Scheme != "https" && p.Scheme != "http" || p.Host == "" {
		return nil, fmt.Errorf("slack channel: webhook_url must be an https:// URL")
	}
	return &slack{client: deps.HTTP, url: u, channel: get("channel"),
		username: get("username"), template: ch.Template}, nil
}

type slackMessage struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color    string   `json:"color"`
	Title    string   `json:"title"`
	Text     string   `json:"text"`
	Fallback string   `json:"fallback"`
	MrkdwnIn []string `json:"mrkdwn_in"`
}

func (s *slack) Send(ctx context.Context, msg *Message) error {
	r, err := Render(slackType.Name, s.template, msg)
	if err != nil {
		return err
	}
	color := "good"
	if msg.Status == "firing" {
		color = "danger"
	}
	body := slackMessage{Channel: s.channel, Username: s.username, Attachments: []slackAttachment{{
		Color: color, Title: r.Title, Text: r.Text, Fallback: r.Title, MrkdwnIn: []string{"text"},
	}}}
	// Slack answers "ok" as text, or an error status with the reason.
	_, err = postJSON(ctx, s.client, s.url, body, nil)
	return err
}
