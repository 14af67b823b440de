package notifiers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var feishuType = Type{
	Name:  "feishu",
	Title: "Feishu / Lark bot",
	Settings: []Setting{
		{Key: "webhook_url", Description: "the custom bot's webhook address (https://open.feishu.cn/open-apis/bot/v2/hook/... or open.larksuite.com)", Required: true, Secret: true},
		{Key: "secret", Description: "signing secret when the bot's security setting is \"signature verification\"", Secret: true},
	},
	DefaultTemplate: markdownTemplate,
	build:           newFeishu,
}

// feishuThrottled is the bot's "request frequency limit" code.
const feishuThrottled = 11232

type feishu struct {
	client   *http.Client
	now      func() time.Time
	url      string
	secret   string
	template string
}

func newFeishu(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	u := get("webhook_url")
	if p, err := url.Parse(u); err != nil || p.Host == "" {
		return nil, fmt.Errorf("feishu channel: webhook_url must be an https:// address")
	}
	return &feishu{client: deps.HTTP, now: deps.Now, url: u, secret: get("secret"), template: ch.Template}, nil
}

type feishuMessage struct {
	Timestamp string     `json:"timestamp,omitempty"`
	Sign      string     `json:"sign,omitempty"`
	MsgType   string     `json:"msg_type"`
	Card      feishuCard `json:"card"`
}

type feishuCard struct {
	Config   map[string]bool `json:"config"`
	Header   feishuHeader    `json:"header"`
	Elements []feishuElement `json:"elements"`
}

type feishuHeader struct {
	Title    feishuText `json:"title"`
	Template string     `json:"template"`
}

type feishuText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

type feishuElement struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// FeishuSign is the bot's signature: base64 of HMAC-SHA256 keyed with
// "<timestamp s>\n<secret>" over an empty message.
func FeishuSign(timestamp int64, secret string) string {
	h := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func (f *feishu) Send(ctx context.Context, msg *Message) error {
	r, err := Render(feishuType.Name, f.template, msg)
	if err != nil {
		return err
	}
	color := "green"
	if msg.Status == "firing" {
		color = "red"
	}
	body := feishuMessage{MsgType: "interactive", Card: feishuCard{
		Config:   map[string]bool{"wide_screen_mode": true},
		Header:   feishuHeader{Title: feishuText{Tag: "plain_text", Content: r.Title}, Template: color},
		Elements: []feishuElement{{Tag: "markdown", Content: r.Text}},
	}}
	if f.secret != "" {
		ts := f.now().Unix()
		body.Timestamp = strconv.FormatInt(ts, 10)
		body.Sign = FeishuSign(ts, f.secret)
	}
	answer, err := postJSON(ctx, f.client, f.url, body, nil)
	if err != nil {
		return err
	}
	// The bot answers {"code":0,...}; older deployments {"StatusCode":0,...}.
	var a struct {
		Code       *int   `json:"code"`
		Msg        string `json:"msg"`
		StatusCode *int   `json:"StatusCode"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		return fmt.Errorf("answer is not the bot's JSON: %s", quote(answer))
	}
	code := 0
	switch {
	case a.Code != nil:
		code = *a.Code
	case a.StatusCode != nil:
		code = *a.StatusCode
	}
	if code == 0 {
		return nil
	}
	err = fmt.Errorf("bot refused the message: code %d: %s", code, a.Msg)
	if code == feishuThrottled {
		return Retry(err)
	}
	return err
}
