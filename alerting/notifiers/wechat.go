package notifiers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

var wechatType = Type{
	Name:  "wechat",
	Title: "WeChat Work group robot",
	Settings: []Setting{
		{Key: "key", Description: "the robot's key (the key= of its webhook address)", Required: true, Secret: true},
		{Key: "url", Description: "robot API address", Default: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"},
	},
	DefaultTemplate: markdownTemplate,
	build:           newWechat,
}

// wechatMaxContent is the robot's limit on a markdown message, in bytes.
const wechatMaxContent = 4096

// wechatThrottled is the robot's "too many messages per minute" code.
const wechatThrottled = 45009

type wechat struct {
	client   *http.Client
	url      string
	template string
}

func newWechat(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	u, err := url.Parse(get("url"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("wechat channel: url %q is not an http(s) address", get("url"))
	}
	q := u.Query()
	q.Set("key", get("key"))
	u.RawQuery = q.Encode()
	return &wechat{client: deps.HTTP, url: u.String(), template: ch.Template}, nil
}

type wechatMessage struct {
	MsgType  string         `json:"msgtype"`
	Markdown wechatMarkdown `json:"markdown"`
}

type wechatMarkdown struct {
	Content string `json:"content"`
}

func (w *wechat) Send(ctx context.Context, msg *Message) error {
	r, err := Render(wechatType.Name, w.template, msg)
	if err != nil {
		return err
	}
	content := truncateBytes("### "+r.Title+"\n"+r.Text, wechatMaxContent)
	answer, err := postJSON(ctx, w.client, w.url, wechatMessage{MsgType: "markdown", Markdown: wechatMarkdown{Content: content}}, nil)
	if err != nil {
		return err
	}
	return checkRobot(answer, wechatThrottled)
}

// truncateBytes cuts s to at most n bytes on a rune boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
