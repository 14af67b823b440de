package notifiers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var dingtalkType = Type{
	Name:  "dingtalk",
	Title: "DingTalk robot",
	Settings: []Setting{
		{Key: "access_token", Description: "the robot's access_token (from its webhook address)", Required: true, Secret: true},
		{Key: "secret", Description: "signing secret (SEC...) when the robot's security setting is \"sign\"", Secret: true},
		{Key: "url", Description: "robot API address", Default: "https://oapi.dingtalk.com/robot/send"},
		{Key: "at_mobiles", Description: "comma-separated mobile numbers to @ in the group"},
		{Key: "at_all", Description: "true to @ everyone", Default: "false"},
	},
	DefaultTemplate: markdownTemplate,
	build:           newDingtalk,
}

// dingtalkThrottled is the robot's "sending too fast" code.
const dingtalkThrottled = 130101

type dingtalk struct {
	client    *http.Client
	now       func() time.Time
	url       *url.URL
	token     string
	secret    string
	atMobiles []string
	atAll     bool
	template  string
}

func newDingtalk(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	u, err := url.Parse(get("url"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("dingtalk channel: url %q is not an http(s) address", get("url"))
	}
	atAll, err := strconv.ParseBool(get("at_all"))
	if err != nil {
		return nil, fmt.Errorf("dingtalk channel: at_all %q must be true or false", get("at_all"))
	}
	var mobiles []string
	for _, m := range strings.Split(get("at_mobiles"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			mobiles = append(mobiles, m)
		}
	}
	return &dingtalk{client: deps.HTTP, now: deps.Now, url: u, token: get("access_token"),
		secret: get("secret"), atMobiles: mobiles, atAll: atAll, template: ch.Template}, nil
}

type dingtalkMessage struct {
	MsgType  string           `json:"msgtype"`
	Markdown dingtalkMarkdown `json:"markdown"`
	At       dingtalkAt       `json:"at"`
}

type dingtalkMarkdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

type dingtalkAt struct {
	AtMobiles []string `json:"atMobiles"`
	IsAtAll   bool     `json:"isAtAll"`
}

// DingtalkSign is the robot's signature: base64 of HMAC-SHA256, keyed with the
// secret, over "<timestamp ms>\n<secret>".
func DingtalkSign(timestampMs int64, secret string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(timestampMs, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func (d *dingtalk) Send(ctx context.Context, msg *Message) error {
	r, err := Render(dingtalkType.Name, d.template, msg)
	if err != nil {
		return err
	}
	u := *d.url
	q := u.Query()
	q.Set("access_token", d.token)
	if d.secret != "" {
		ts := d.now().UnixMilli()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingtalkSign(ts, d.secret))
	}
	u.RawQuery = q.Encode()
	text := "### " + r.Title + "\n\n" + r.Text
	for _, m := range d.atMobiles {
		text += " @" + m
	}
	mobiles := d.atMobiles
	if mobiles == nil {
		mobiles = []string{}
	}
	body := dingtalkMessage{MsgType: "markdown", Markdown: dingtalkMarkdown{Title: r.Title, Text: text},
		At: dingtalkAt{AtMobiles: mobiles, IsAtAll: d.atAll}}
	answer, err := postJSON(ctx, d.client, u.String(), body, nil)
	if err != nil {
		return err
	}
	return checkRobot(answer, dingtalkThrottled)
}
