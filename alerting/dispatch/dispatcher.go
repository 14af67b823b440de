// Package dispatch turns alerts into notifications, as Alertmanager's dispatcher
// and notification pipeline do: a routing tree picks the channels of each alert,
// aggregation groups batch alerts of one cause (group_by) so that a storm of
// instances becomes one message per group, timed by group_wait, group_interval
// and repeat_interval; silences and inhibition rules mute alerts;
// acknowledgements stop repeats; a notification log in PostgreSQL, written before
// each send, keeps a new leader after failover from sending a message twice.
//
// One replica dispatches at a time, elected through an advisory lock. It reads
// the alerts the engine stores (AlertSource) on each NOTIFY amas_alerts and on a
// tick, rather than being pushed them, so a replica that takes over knows every
// open alert at once.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/alerting/silence"
)

// Config tunes a Dispatcher; zero values take the defaults.
type Config struct {
	// Holder names this replica in the leadership row and the logs.
	Holder string
	// ExternalURL is this Amas's address, in messages (the webhook's externalURL).
	ExternalURL string
	// Tick is the most time between two rounds (default 10s); a NOTIFY from the
	// engine starts one at once.
	Tick time.Duration
	// ResolvedRetention is how long after resolving an alert is still read to send
	// its resolved message (default 1h).
	ResolvedRetention time.Duration
	// Retry is the delivery retry policy.
	Retry RetryPolicy
	// Concurrency is how many groups are flushed at once (default 8).
	Concurrency int
	// Now is the clock of grouping decisions (default time.Now).
	Now func() time.Time
}

// Deps are the Dispatcher's collaborators.
type Deps struct {
	Alerts   AlertSource
	Settings SettingsSource
	Log      Log
	Leader   Leadership
	// NewSender builds a channel's sender (default notifiers.New with a 10s HTTP
	// client).
	NewSender func(notifiers.Channel) (notifiers.Sender, error)
	// Sleep waits between retries and reports whether ctx is still live (default:
	// a timer); tests advance a fake clock instead.
	Sleep  func(ctx context.Context, d time.Duration) bool
	Logger *slog.Logger
	// Registerer takes the dispatcher's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

const (
	defaultTick              = 10 * time.Second
	defaultResolvedRetention = time.Hour
	defaultConcurrency       = 8
)

// Dispatcher routes, groups and sends. Run it on every replica of the alert
// role: only the leader works.
type Dispatcher struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	deliver *deliverer

	// groups belong to the goroutine running rounds.
	groups map[string]*group
}

// group is an aggregation group: the alerts of one route with the same values of
// its group_by labels.
type group struct {
	key       string
	route     *Node
	labels    alerting.Labels
	alerts    []alerting.Alert // this round's members
	nextFlush time.Time
	flushed   bool
	// doneResolved holds the resolved episodes a successful flush has covered:
	// they leave the group.
	doneResolved map[string]bool
}

// New returns a dispatcher.
func New(deps Deps, cfg Config) *Dispatcher {
	if cfg.Tick <= 0 {
		cfg.Tick = defaultTick
	}
	if cfg.ResolvedRetention <= 0 {
		cfg.ResolvedRetention = defaultResolvedRetention
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = defaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Retry.fill()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.NewSender == nil {
		deps.NewSender = DefaultSenders()
	}
	if deps.Sleep == nil {
		deps.Sleep = sleep
	}
	m := newMetrics(deps.Registerer)
	return &Dispatcher{
		cfg: cfg, deps: deps, log: deps.Logger, metrics: m, groups: map[string]*group{},
		deliver: &deliverer{log: deps.Log, senders: newSenderCache(deps.NewSender), retry: cfg.Retry,
			now: cfg.Now, sleep: deps.Sleep, metrics: m, logger: deps.Logger},
	}
}

// Run dispatches while this replica leads, and tries to lead every Tick while
// another does, until ctx is cancelled; it then returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		lease, err := d.deps.Leader.TryLeadDispatch(ctx, d.cfg.Holder)
		if err == nil && lease != nil {
			err = d.lead(ctx, lease)
		}
		if err != nil && ctx.Err() == nil {
			d.metrics.roundErrors.Inc()
			d.log.Warn("dispatcher leadership", "err", err)
		}
		if !sleep(ctx, d.cfg.Tick) {
			return nil
		}
	}
}

// lead runs rounds until the lease is lost or ctx ends.
func (d *Dispatcher) lead(ctx context.Context, lease Lease) error {
	defer lease.Release()
	d.metrics.leader.Set(1)
	defer d.metrics.leader.Set(0)
	d.log.Info("dispatcher leadership acquired: this replica sends notifications", "term", lease.Term())
	// A new leader starts without groups: their timing restarts with group_wait,
	// and the notification log keeps what was sent from being sent again.
	d.groups = map[string]*group{}
	for {
		next, err := d.Round(ctx, lease.Term())
		switch {
		case errors.Is(err, ErrNotLeader):
			return err
		case err != nil && ctx.Err() == nil:
			d.metrics.roundErrors.Inc()
			d.log.Error("dispatch round", "err", err)
		}
		wait := d.cfg.Tick
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(d.cfg.Now()), 0))
		}
		if err := lease.Wait(ctx, wait); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dispatcher lease: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Round reads the alerts and settings, regroups, and flushes the groups that are
// due at the clock's now, under leadership term. It returns when the next group
// is due (zero when there is none). Run calls it; tests call it with a fake clock.
func (d *Dispatcher) Round(ctx context.Context, term int64) (time.Time, error) {
	now := d.cfg.Now()
	alerts, err := d.deps.Alerts.ActiveAlerts(ctx, now.Add(-d.cfg.ResolvedRetention))
	if err != nil {
		return time.Time{}, fmt.Errorf("read alerts: %w", err)
	}
	st, err := d.deps.Settings.NotifySettings(ctx, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("read notification settings: %w", err)
	}
	tree, err := Compile(st.Routes)
	if err != nil {
		// A stored tree was checked when saved; this is a bug or a hand edit.
		return time.Time{}, fmt.Errorf("routing tree: %w", err)
	}
	d.regroup(tree, alerts, now)
	rs := newRoundState(st, alerts, now)
	var due []*group
	for _, g := range d.groups {
		if !g.nextFlush.After(now) {
			due = append(due, g)
		}
	}
	slices.SortFunc(due, func(a, b *group) int { return compareStrings(a.key, b.key) })
	// On a failed read the groups stay due, for the next round.
	if rs.last, err = d.lastNotifications(ctx, due); err != nil {
		return now.Add(d.cfg.Tick), err
	}
	next := time.Time{}
	for _, g := range d.groups {
		if !g.nextFlush.After(now) {
			g.nextFlush = now.Add(g.route.Opts.GroupInterval)
		}
		if next.IsZero() || g.nextFlush.Before(next) {
			next = g.nextFlush
		}
	}
	eg, egCtx := errgroup.WithContext(ctx)
	eg.SetLimit(d.cfg.Concurrency)
	for _, g := range due {
		// Each goroutine touches only its own group.
		eg.Go(func() error {
			done, err := d.flush(egCtx, term, g, rs)
			g.flushed = true
			if done {
				for _, a := range g.alerts {
					if a.Resolved() {
						g.doneResolved[episode(a.Fingerprint, a.StartsAt)] = true
					}
				}
			}
			return err
		})
	}
	err = eg.Wait()
	d.metrics.groups.Set(float64(len(d.groups)))
	return next, err
}

// lastNotifications reads, in one query, what each channel of the due groups
// was last told.
func (d *Dispatcher) lastNotifications(ctx context.Context, due []*group) (map[LogKey]LogEntry, error) {
	var keys []LogKey
	for _, g := range due {
		for _, id := range g.route.Opts.Channels {
			keys = append(keys, LogKey{GroupKey: g.key, ChannelID: id})
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	last, err := d.deps.Log.LastNotifications(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read notification log: %w", err)
	}
	return last, nil
}

// regroup puts this round's alerts into their groups, creates the groups that
// are new (due after group_wait) and drops the empty ones.
func (d *Dispatcher) regroup(tree *Tree, alerts []alerting.Alert, now time.Time) {
	// seenDone holds, per group, the covered resolved episodes still read: the
	// others are forgotten, so doneResolved does not grow.
	seenDone := map[*group]map[string]bool{}
	for _, g := range d.groups {
		g.alerts = g.alerts[:0]
		seenDone[g] = map[string]bool{}
	}
	for _, a := range alerts {
		if a.State != alerting.StateFiring && a.State != alerting.StateNoData && !a.Resolved() {
			continue
		}
		for _, n := range tree.Match(a.Labels) {
			key := n.GroupKey(a.Labels)
			g := d.groups[key]
			if g == nil {
				g = &group{key: key, route: n, labels: n.groupLabels(a.Labels), nextFlush: now.Add(n.Opts.GroupWait),
					doneResolved: map[string]bool{}}
				d.groups[key] = g
				seenDone[g] = map[string]bool{}
			}
			g.route = n // the tree may have been edited: same key, new options
			if a.Resolved() && g.doneResolved[episode(a.Fingerprint, a.StartsAt)] {
				seenDone[g][episode(a.Fingerprint, a.StartsAt)] = true
				continue
			}
			g.alerts = append(g.alerts, a)
			// An alert older than group_wait (a new leader, or a route edit) does not
			// wait again, as in Alertmanager.
			if !g.flushed && !a.Resolved() && !a.StartsAt.IsZero() && a.StartsAt.Add(n.Opts.GroupWait).Before(now) {
				g.nextFlush = now
			}
		}
	}
	for key, g := range d.groups {
		if len(g.alerts) == 0 {
			delete(d.groups, key)
			continue
		}
		for ep := range g.doneResolved {
			if !seenDone[g][ep] {
				delete(g.doneResolved, ep)
			}
		}
	}
}

// roundState is what every flush of a round shares.
type roundState struct {
	now       time.Time
	channels  map[int64]notifiers.Channel
	silences  []silence.Silence
	inhibitor *inhibit.Inhibitor
	acks      map[string][]time.Time
	last      map[LogKey]LogEntry // read-only once the flushes start
}

func newRoundState(st Settings, alerts []alerting.Alert, now time.Time) *roundState {
	rs := &roundState{now: now, channels: map[int64]notifiers.Channel{}, silences: st.Silences,
		inhibitor: inhibit.New(st.InhibitRules, alerts), acks: st.Acks}
	for _, ch := range st.Channels {
		rs.channels[ch.ID] = ch
	}
	return rs
}

func (rs *roundState) muted(a alerting.Alert) bool {
	if len(silence.Matching(rs.silences, a.Labels, rs.now)) > 0 {
		return true
	}
	_, _, inhibited := rs.inhibitor.InhibitedBy(a)
	return inhibited
}

func (rs *roundState) acked(a alerting.Alert) bool {
	return slices.ContainsFunc(rs.acks[a.Fingerprint], func(t time.Time) bool { return t.Equal(a.StartsAt) })
}

// flush sends the group's current alerts to each channel of its route that
// needs to hear of them. done reports that every channel is up to date, so that
// the resolved alerts can leave the group.
func (d *Dispatcher) flush(ctx context.Context, term int64, g *group, rs *roundState) (done bool, err error) {
	var alerts []alerting.Alert
	for _, a := range g.alerts {
		if !rs.muted(a) {
			alerts = append(alerts, a)
		}
	}
	slices.SortFunc(alerts, func(a, b alerting.Alert) int { return compareStrings(a.Labels.String(), b.Labels.String()) })
	done = true
	for _, id := range g.route.Opts.Channels {
		ch, ok := rs.channels[id]
		if !ok {
			d.log.Warn("route names a channel that does not exist", "route", g.route.Key, "channel_id", id)
			continue
		}
		ok, err := d.notifyChannel(ctx, term, g, ch, alerts, rs)
		if err != nil {
			return false, err
		}
		done = done && ok
	}
	return done, nil
}

// notifyChannel decides, against the log, whether ch must hear of alerts, and
// sends them if so. ok is false when the delivery failed.
func (d *Dispatcher) notifyChannel(ctx context.Context, term int64, g *group, ch notifiers.Channel, alerts []alerting.Alert, rs *roundState) (ok bool, err error) {
	last, hasLast := rs.last[LogKey{GroupKey: g.key, ChannelID: ch.ID}]
	var firing, resolved []alerting.Alert
	for _, a := range alerts {
		if a.Resolved() {
			resolved = append(resolved, a)
		} else {
			firing = append(firing, a)
		}
	}
	send, repeat := needsUpdate(last, hasLast, firing, resolved, ch.SendResolved, g.route.Opts.RepeatInterval, rs.now)
	if !send {
		return true, nil
	}
	if repeat && len(firing) > 0 && !slices.ContainsFunc(firing, func(a alerting.Alert) bool { return !rs.acked(a) }) {
		d.metrics.ackedRepeats.Inc()
		return true, nil
	}
	out := firing
	if ch.SendResolved {
		out = append(slices.Clone(firing), resolved...)
		slices.SortFunc(out, func(a, b alerting.Alert) int { return compareStrings(a.Labels.String(), b.Labels.String()) })
	}
	entry := LogEntry{GroupKey: g.key, ChannelID: ch.ID, ChannelName: ch.Name, ChannelType: ch.Type,
		Firing: len(firing), CreatedAt: rs.now, Term: term}
	if len(out) == 0 {
		// Nothing left to say (everything resolved and the channel does not want
		// resolved messages, or the rest is muted): log it anyway, so that the
		// next firing is news again (as Alertmanager does for resolved groups).
		entry.Status, entry.Alerts, entry.Resolved = StatusSkipped, logAlerts(resolved), len(resolved)
		entry.Error = "nothing to send: the alerts resolved (send_resolved is off) or are muted"
		_, err := d.deps.Log.BeginNotification(ctx, term, entry)
		return err == nil, err
	}
	if ch.SendResolved {
		entry.Resolved = len(resolved)
	}
	entry.Status, entry.Alerts = StatusSending, logAlerts(out)
	acked := map[string]bool{}
	for _, a := range out {
		if rs.acked(a) {
			acked[a.Fingerprint] = true
		}
	}
	msg := notifiers.NewMessage(ch.Name, g.key, d.cfg.ExternalURL, g.labels, out, acked)
	_, status, err := d.deliver.run(ctx, term, entry, ch, msg)
	if err != nil {
		return false, err
	}
	return status == StatusSent, nil
}

// needsUpdate is Alertmanager's DedupStage decision over firing episodes: send
// when an episode fires that the channel was not told of, when everything it was
// told of has resolved, when (send_resolved) an episode resolved that it was not
// told of, or when repeat_interval has passed; repeat says it is only the last.
func needsUpdate(last LogEntry, hasLast bool, firing, resolved []alerting.Alert, sendResolved bool, repeatInterval time.Duration, now time.Time) (send, repeat bool) {
	if !hasLast {
		return len(firing) > 0, false
	}
	lastFiring, lastResolved := last.sets()
	for _, a := range firing {
		if !lastFiring[episode(a.Fingerprint, a.StartsAt)] {
			return true, false
		}
	}
	if len(firing) == 0 {
		return len(lastFiring) > 0, false
	}
	if sendResolved {
		for _, a := range resolved {
			if !lastResolved[episode(a.Fingerprint, a.StartsAt)] {
				return true, false
			}
		}
	}
	if !last.CreatedAt.After(now.Add(-repeatInterval)) {
		return true, true
	}
	return false, false
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sleep waits d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
