// Package notifiers sends grouped alert notifications to channels: one file per
// channel type (email, Slack, WeChat Work, DingTalk, Feishu/Lark, webhook,
// PagerDuty). Each type declares its settings, which of them are secret, and its
// default message template; New builds the sender of one configured channel.
// Retrying is the dispatcher's job: a sender says, through Retryable, whether a
// failure is worth another attempt.
package notifiers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Channel is one configured destination.
type Channel struct {
	ID       int64
	Name     string
	Type     string
	Settings map[string]string // not secret: shown through the API
	Secrets  map[string]string // write-only through the API
	// SecretsErr says why the stored secrets could not be read (sealed with
	// another server's key); New refuses such a channel with it.
	SecretsErr   error
	Template     string // empty: the type's default template
	SendResolved bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Setting describes one setting of a channel type.
type Setting struct {
	Key         string
	Description string
	Required    bool
	Secret      bool
	Default     string
}

// Type is a kind of channel.
type Type struct {
	Name     string
	Title    string
	Settings []Setting
	// DefaultTemplate is the message template used when a channel has none;
	// empty for types whose body is fixed (webhook).
	DefaultTemplate string
	build           func(ch Channel, get func(key string) string, deps Deps) (Sender, error)
}

// Sender delivers one message to one channel.
type Sender interface {
	Send(ctx context.Context, msg *Message) error
}

// Deps are what senders need from outside.
type Deps struct {
	HTTP *http.Client
	// Now stamps the signatures of DingTalk and Feishu (time.Now when nil).
	Now func() time.Time
}

// Types lists every channel type, sorted by name.
func Types() []Type {
	ts := []Type{emailType, slackType, wechatType, dingtalkType, feishuType, webhookType, pagerdutyType}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// TypeByName finds a channel type.
func TypeByName(name string) (Type, bool) {
	for _, t := range Types() {
		if t.Name == name {
			return t, true
		}
	}
	return Type{}, false
}

// Validate checks a channel's type and settings: unknown keys, settings given as
// secrets or the other way round, and missing required ones are errors naming
// the key. The template, when set, must parse.
func Validate(ch Channel) error {
	t, ok := TypeByName(ch.Type)
	if !ok {
		names := make([]string, 0, 7)
		for _, t := range Types() {
			names = append(names, t.Name)
		}
		return fmt.Errorf("channel type %q is unknown (want one of %s)", ch.Type, strings.Join(names, ", "))
	}
	if strings.TrimSpace(ch.Name) == "" {
		return fmt.Errorf("channel name is required")
	}
	known := map[string]Setting{}
	for _, s := range t.Settings {
		known[s.Key] = s
	}
	for _, kind := range []struct {
		values map[string]string
		secret bool
	}{{ch.Settings, false}, {ch.Secrets, true}} {
		for _, k := range slices.Sorted(maps.Keys(kind.values)) {
			s, ok := known[k]
			switch {
			case !ok:
				return fmt.Errorf("%s channel: unknown setting %q", t.Name, k)
			case s.Secret && !kind.secret:
				return fmt.Errorf("%s channel: %q is a secret: set it as a secret, not a setting", t.Name, k)
			case !s.Secret && kind.secret:
				return fmt.Errorf("%s channel: %q is not a secret: set it as a setting", t.Name, k)
			}
		}
	}
	for _, s := range t.Settings {
		if s.Required && value(ch, s) == "" {
			return fmt.Errorf("%s channel: setting %q is required (%s)", t.Name, s.Key, s.Description)
		}
	}
	if ch.Template != "" {
		if _, err := parseTemplate(ch.Template); err != nil {
			return fmt.Errorf("%s channel: %w", t.Name, err)
		}
	}
	_, err := t.build(ch, t.getter(ch), Deps{HTTP: http.DefaultClient, Now: time.Now})
	return err
}

// New builds the sender of ch.
func New(ch Channel, deps Deps) (Sender, error) {
	if ch.SecretsErr != nil {
		return nil, fmt.Errorf("channel %q: %w", ch.Name, ch.SecretsErr)
	}
	if err := Validate(ch); err != nil {
		return nil, err
	}
	if deps.HTTP == nil {
		deps.HTTP = http.DefaultClient
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	t, _ := TypeByName(ch.Type)
	return t.build(ch, t.getter(ch), deps)
}

// value is a setting's configured value, or its default.
func value(ch Channel, s Setting) string {
	src := ch.Settings
	if s.Secret {
		src = ch.Secrets
	}
	if v := strings.TrimSpace(src[s.Key]); v != "" {
		return v
	}
	return s.Default
}

// getter reads the settings of ch by key, defaults applied.
func (t Type) getter(ch Channel) func(key string) string {
	return func(key string) string {
		for _, s := range t.Settings {
			if s.Key == key {
				return value(ch, s)
			}
		}
		panic("notifiers: " + t.Name + " has no setting " + key)
	}
}

// retryableError marks a failure that another attempt may get past: a network
// error, a 5xx or a 429 answer, a throttled robot.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retry marks err as worth another attempt.
func Retry(err error) error { return &retryableError{err: err} }

// Retryable reports whether a Send failure may succeed when tried again.
func Retryable(err error) bool {
	var r *retryableError
	return errors.As(err, &r)
}
