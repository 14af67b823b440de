package resolvers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/alerting/silence"
	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/graph/model"
	"github.com/amas-eye/amas/resolvers/scalar"
	"github.com/amas-eye/amas/store"
)

// ChannelStore keeps notification channels (store.Store).
type ChannelStore interface {
	Channels(ctx context.Context) ([]notifiers.Channel, error)
	Channel(ctx context.Context, id int64) (notifiers.Channel, error)
	CreateChannel(ctx context.Context, ch notifiers.Channel) (notifiers.Channel, error)
	UpdateChannel(ctx context.Context, ch notifiers.Channel) (notifiers.Channel, error)
	DeleteChannel(ctx context.Context, id int64) error
}

// RoutingStore keeps the routing tree and the inhibition rules (store.Store).
type RoutingStore interface {
	Routes(ctx context.Context) (dispatch.Route, string, time.Time, error)
	SetRoutes(ctx context.Context, r dispatch.Route, by string) error
	InhibitRules(ctx context.Context) ([]inhibit.Rule, error)
	CreateInhibitRule(ctx context.Context, r inhibit.Rule) (inhibit.Rule, error)
	UpdateInhibitRule(ctx context.Context, r inhibit.Rule) (inhibit.Rule, error)
	DeleteInhibitRule(ctx context.Context, id int64) error
}

// SilenceStore keeps silences (store.Store).
type SilenceStore interface {
	Silences(ctx context.Context, endsAfter time.Time) ([]silence.Silence, error)
	Silence(ctx context.Context, id int64) (silence.Silence, error)
	CreateSilence(ctx context.Context, s silence.Silence) (silence.Silence, error)
	UpdateSilence(ctx context.Context, s silence.Silence) (silence.Silence, error)
	ExpireSilence(ctx context.Context, id int64, now time.Time) (silence.Silence, error)
}

// NotificationLog reads the notification log and records acknowledgements
// (store.Store).
type NotificationLog interface {
	Notifications(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error)
	Acknowledge(ctx context.Context, fingerprint string, startsAt time.Time, by, comment string, at time.Time) error
}

// MuteReader tells how notifications of open alerts stand (dispatch.Muter).
type MuteReader interface {
	Status(ctx context.Context, fingerprints ...string) (map[string]dispatch.Mute, error)
}

// ChannelTester sends a test message (dispatch.Tester).
type ChannelTester interface {
	Test(ctx context.Context, ch notifiers.Channel) (int64, dispatch.Status, error)
}

// NotifyDeps are the dependencies of the notification fields; all are required
// when the schema is served.
type NotifyDeps struct {
	Channels ChannelStore
	Routing  RoutingStore
	Silences SilenceStore
	Log      NotificationLog
	Alerts   dispatch.AlertSource
	Mutes    MuteReader
	Tester   ChannelTester
}

// parseID reads an ID argument of what (a channel, a silence, ...).
func parseID(what, id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, scalar.Inputf("%s id %q is not a valid id", what, id)
	}
	return n, nil
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

// caller names who is changing something, for created_by columns.
func caller(ctx context.Context) string {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return ""
	}
	return userOf(p).Username
}

// notFound maps store.ErrNotFound onto a user error naming the object.
func notFound(err error, what string, id int64) error {
	if errors.Is(err, store.ErrNotFound) {
		return scalar.Inputf("there is no %s with id %d", what, id)
	}
	return err
}

var matchOps = map[model.NotifyMatchOp]alerting.MatchOp{
	model.NotifyMatchOpEq: alerting.MatchEqual, model.NotifyMatchOpNeq: alerting.MatchNotEqual,
	model.NotifyMatchOpRe: alerting.MatchRegexp, model.NotifyMatchOpNre: alerting.MatchNotRegexp,
}

func matchersIn(in []model.NotifyMatcherInput) (alerting.Matchers, error) {
	out := make(alerting.Matchers, 0, len(in))
	for _, m := range in {
		mt, err := alerting.NewMatcher(m.Name, matchOps[m.Op], m.Value)
		if err != nil {
			return nil, scalar.Inputf("%v", err)
		}
		out = append(out, mt)
	}
	return out, nil
}

func matchersOut(ms alerting.Matchers) []model.NotifyMatcher {
	out := make([]model.NotifyMatcher, 0, len(ms))
	for _, m := range ms {
		for op, mo := range matchOps {
			if mo == m.Op {
				out = append(out, model.NotifyMatcher{Name: m.Name, Op: op, Value: m.Value})
			}
		}
	}
	return out
}

func channelOut(ch notifiers.Channel) model.NotifyChannel {
	out := model.NotifyChannel{ID: formatID(ch.ID), Name: ch.Name, Type: ch.Type, Template: ch.Template,
		SendResolved: ch.SendResolved, CreatedAt: ch.CreatedAt, UpdatedAt: ch.UpdatedAt,
		Settings: []model.ChannelSetting{}, Secrets: []model.ChannelSecret{}}
	for _, k := range slices.Sorted(maps.Keys(ch.Settings)) {
		out.Settings = append(out.Settings, model.ChannelSetting{Key: k, Value: ch.Settings[k]})
	}
	t, _ := notifiers.TypeByName(ch.Type)
	for _, s := range t.Settings {
		if s.Secret {
			out.Secrets = append(out.Secrets, model.ChannelSecret{Key: s.Key, Set: ch.Secrets[s.Key] != ""})
		}
	}
	if ch.SecretsErr != nil {
		msg := ch.SecretsErr.Error()
		out.SecretsError = &msg
	}
	return out
}

// channelIn applies an input onto a channel: settings replaced, secrets merged
// (null clears, absent keeps).
func channelIn(ch notifiers.Channel, in model.ChannelInput) notifiers.Channel {
	ch.Name, ch.Type, ch.Template = in.Name, in.Type, deref(in.Template)
	ch.SendResolved = in.SendResolved == nil || *in.SendResolved
	ch.Settings = map[string]string{}
	for _, s := range in.Settings {
		ch.Settings[s.Key] = s.Value
	}
	secrets := maps.Clone(ch.Secrets)
	if secrets == nil {
		secrets = map[string]string{}
	}
	for _, s := range in.Secrets {
		if s.Value == nil || *s.Value == "" {
			delete(secrets, s.Key)
		} else {
			secrets[s.Key] = *s.Value
		}
	}
	ch.Secrets = secrets
	return ch
}

// saveChannelError turns validation and conflict errors into user errors.
func saveChannelError(err error, name string) error {
	if errors.Is(err, store.ErrConflict) {
		return scalar.Inputf("a channel named %q already exists", name)
	}
	return err
}

func routeIn(in model.NotifyRouteInput, path string) (dispatch.Route, error) {
	ms, err := matchersIn(in.Matchers)
	if err != nil {
		return dispatch.Route{}, scalar.Inputf("%s: %v", path, err)
	}
	r := dispatch.Route{Matchers: ms, GroupBy: in.GroupBy, GroupWait: in.GroupWait, GroupInterval: in.GroupInterval,
		RepeatInterval: in.RepeatInterval, Continue: deref(in.Continue)}
	if len(r.Matchers) == 0 {
		r.Matchers = nil
	}
	for _, id := range in.ChannelIds {
		n, err := parseID("channel", id)
		if err != nil {
			return dispatch.Route{}, scalar.Inputf("%s: %v", path, err)
		}
		r.Channels = append(r.Channels, n)
	}
	for i, c := range in.Routes {
		child, err := routeIn(c, path+".routes["+strconv.Itoa(i)+"]")
		if err != nil {
			return dispatch.Route{}, err
		}
		r.Routes = append(r.Routes, child)
	}
	return r, nil
}

// routeOut maps a route and its compiled node (for the effective options).
func routeOut(r dispatch.Route, n *dispatch.Node, channels map[int64]notifiers.Channel) model.NotifyRoute {
	out := model.NotifyRoute{Matchers: matchersOut(r.Matchers), Channels: []model.NotifyChannel{}, GroupBy: r.GroupBy,
		GroupWait: r.GroupWait, GroupInterval: r.GroupInterval, RepeatInterval: r.RepeatInterval, Continue: r.Continue,
		Routes: []model.NotifyRoute{}, EffectiveGroupBy: n.Opts.GroupBy, EffectiveGroupWait: n.Opts.GroupWait,
		EffectiveGroupInterval: n.Opts.GroupInterval, EffectiveRepeatInterval: n.Opts.RepeatInterval}
	if n.Opts.GroupByAll {
		out.EffectiveGroupBy = []string{dispatch.GroupByAll}
	}
	if out.EffectiveGroupBy == nil {
		out.EffectiveGroupBy = []string{}
	}
	for _, id := range r.Channels {
		if ch, ok := channels[id]; ok {
			out.Channels = append(out.Channels, channelOut(ch))
		}
	}
	for i, c := range r.Routes {
		out.Routes = append(out.Routes, routeOut(c, n.Children[i], channels))
	}
	return out
}

func (r *Resolver) routing(ctx context.Context) (*model.NotifyRouting, error) {
	route, by, at, err := r.cfg.Notify.Routing.Routes(ctx)
	if err != nil {
		return nil, err
	}
	tree, err := dispatch.Compile(route)
	if err != nil {
		return nil, err
	}
	chans, err := r.cfg.Notify.Channels.Channels(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[int64]notifiers.Channel{}
	for _, ch := range chans {
		byID[ch.ID] = ch
	}
	root := routeOut(route, tree.Root, byID)
	out := &model.NotifyRouting{Root: &root, UpdatedBy: by}
	if !at.IsZero() {
		out.UpdatedAt = &at
	}
	return out, nil
}

func inhibitIn(in model.InhibitRuleInput) (inhibit.Rule, error) {
	src, err := matchersIn(in.SourceMatchers)
	if err != nil {
		return inhibit.Rule{}, err
	}
	dst, err := matchersIn(in.TargetMatchers)
	if err != nil {
		return inhibit.Rule{}, err
	}
	r := inhibit.Rule{Source: src, Target: dst, Equal: in.Equal, Comment: deref(in.Comment)}
	if err := r.Validate(); err != nil {
		return inhibit.Rule{}, scalar.Inputf("%v", err)
	}
	return r, nil
}

func inhibitOut(r inhibit.Rule) model.InhibitRule {
	equal := r.Equal
	if equal == nil {
		equal = []string{}
	}
	return model.InhibitRule{ID: formatID(r.ID), SourceMatchers: matchersOut(r.Source), TargetMatchers: matchersOut(r.Target),
		Equal: equal, Comment: r.Comment, CreatedBy: r.CreatedBy}
}

func silenceIn(in model.SilenceInput, now time.Time) (silence.Silence, error) {
	ms, err := matchersIn(in.Matchers)
	if err != nil {
		return silence.Silence{}, err
	}
	s := silence.Silence{Matchers: ms, StartsAt: now, EndsAt: in.EndsAt, Comment: deref(in.Comment)}
	if in.StartsAt != nil {
		s.StartsAt = *in.StartsAt
	}
	return s, nil
}

func silenceOut(s silence.Silence, now time.Time) model.Silence {
	return model.Silence{ID: formatID(s.ID), Matchers: matchersOut(s.Matchers), StartsAt: s.StartsAt, EndsAt: s.EndsAt,
		CreatedBy: s.CreatedBy, Comment: s.Comment, State: model.SilenceState(strings.ToUpper(string(s.State(now)))),
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func notificationOut(n store.Notification) model.Notification {
	out := model.Notification{ID: formatID(n.ID), GroupKey: n.GroupKey, ChannelName: n.ChannelName, ChannelType: n.ChannelType,
		Status: model.NotificationStatus(strings.ToUpper(string(n.Status))), Firing: n.Firing, Resolved: n.Resolved,
		Error: n.Error, Test: n.Test, CreatedAt: n.CreatedAt, Alerts: []model.NotificationAlert{}, Attempts: []model.NotificationAttempt{}}
	if n.ChannelID != 0 {
		id := formatID(n.ChannelID)
		out.ChannelID = &id
	}
	if !n.FinishedAt.IsZero() {
		out.FinishedAt = &n.FinishedAt
	}
	for _, a := range n.Alerts {
		out.Alerts = append(out.Alerts, model.NotificationAlert{Fingerprint: a.Fingerprint, Status: a.Status, StartsAt: a.StartsAt})
	}
	for _, a := range n.AttemptList {
		out.Attempts = append(out.Attempts, model.NotificationAttempt{Attempt: a.N, At: a.At,
			DurationMs: float64(a.Duration) / float64(time.Millisecond), Error: a.Error, Retryable: a.Retryable})
	}
	return out
}

func (r *Resolver) notificationFilter(in *model.NotificationFilter) (store.NotificationFilter, error) {
	var f store.NotificationFilter
	if in == nil {
		f.Limit = defaultListLimit
		return f, nil
	}
	if in.ChannelID != nil {
		id, err := parseID("channel", *in.ChannelID)
		if err != nil {
			return f, err
		}
		f.ChannelID = id
	}
	if in.Status != nil {
		f.Status = dispatch.Status(strings.ToLower(string(*in.Status)))
	}
	f.GroupKey = deref(in.GroupKey)
	f.Since, f.Until = deref(in.From), deref(in.To)
	n, err := listLimit(in.Limit)
	if err != nil {
		return f, err
	}
	f.Limit = n
	return f, nil
}

// sampleMessage builds a preview message from sample alerts; nil for the
// built-in sample.
func sampleMessage(in []model.SampleAlertInput, now time.Time) (*notifiers.Message, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var alerts []alerting.Alert
	for i, s := range in {
		a := alerting.Alert{Labels: alerting.Labels{}, Annotations: map[string]string{}, State: alerting.StateFiring,
			StartsAt: now.Add(-5 * time.Minute), Value: deref(s.Value)}
		switch deref(s.Status) {
		case "", "firing":
		case "resolved":
			a.State, a.EndsAt = alerting.StateResolved, now
		default:
			return nil, scalar.Inputf("sample alert %d: status %q must be firing or resolved", i, *s.Status)
		}
		for _, l := range s.Labels {
			a.Labels[l.Key] = l.Value
		}
		for _, l := range s.Annotations {
			a.Annotations[l.Key] = l.Value
		}
		if s.StartsAt != nil {
			a.StartsAt = *s.StartsAt
		}
		if s.EndsAt != nil {
			a.EndsAt = *s.EndsAt
		}
		a.Severity = alerting.Severity(a.Labels["severity"])
		alerts = append(alerts, a)
	}
	return notifiers.SampleMessage("preview", now, alerts), nil
}

func errorsIsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// checkRouteChannels rejects a tree naming channels that do not exist.
func checkRouteChannels(r dispatch.Route, chans []notifiers.Channel, path string) error {
	for _, id := range r.Channels {
		if !slices.ContainsFunc(chans, func(ch notifiers.Channel) bool { return ch.ID == id }) {
			return scalar.Inputf("%s: there is no channel with id %d", path, id)
		}
	}
	for i, c := range r.Routes {
		if err := checkRouteChannels(c, chans, path+".routes["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	return nil
}

func muteOut(fp string, m dispatch.Mute) model.AlertMute {
	am := model.AlertMute{Fingerprint: fp, SilencedBy: []string{}, Acknowledged: m.Acknowledged, Muted: m.Muted()}
	for _, id := range m.SilencedBy {
		am.SilencedBy = append(am.SilencedBy, formatID(id))
	}
	if m.InhibitedBy != "" {
		src, rule := m.InhibitedBy, formatID(m.InhibitRuleID)
		am.InhibitedBy, am.InhibitRuleID = &src, &rule
	}
	return am
}
