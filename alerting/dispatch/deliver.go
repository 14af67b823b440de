package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/amas-eye/amas/alerting/notifiers"
)

// RetryPolicy is how often and how patiently a failed delivery is retried:
// retryable failures (network errors, 5xx, 429, throttled robots, SMTP 4xx)
// wait Initial, then twice as long each time up to Max, for at most Attempts
// tries in all. Permanent failures are not retried.
type RetryPolicy struct {
	Attempts int           // default 5
	Initial  time.Duration // default 1s
	Max      time.Duration // default 1m
	// Timeout bounds one attempt (default 15s).
	Timeout time.Duration
}

func (p *RetryPolicy) fill() {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.Initial <= 0 {
		p.Initial = time.Second
	}
	if p.Max < p.Initial {
		p.Max = max(time.Minute, p.Initial)
	}
	if p.Timeout <= 0 {
		p.Timeout = 15 * time.Second
	}
}

// backoff is the wait after failed attempt n (1-based).
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// DefaultSenders builds senders with notifiers.New and one shared HTTP client.
func DefaultSenders() func(notifiers.Channel) (notifiers.Sender, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	return func(ch notifiers.Channel) (notifiers.Sender, error) {
		return notifiers.New(ch, notifiers.Deps{HTTP: client})
	}
}

// senderCache keeps one sender per channel version.
type senderCache struct {
	build func(notifiers.Channel) (notifiers.Sender, error)
	mu    sync.Mutex
	byID  map[int64]cachedSender
}

type cachedSender struct {
	updatedAt time.Time
	sender    notifiers.Sender
}

func newSenderCache(build func(notifiers.Channel) (notifiers.Sender, error)) *senderCache {
	return &senderCache{build: build, byID: map[int64]cachedSender{}}
}

func (c *senderCache) get(ch notifiers.Channel) (notifiers.Sender, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.byID[ch.ID]; ok && s.updatedAt.Equal(ch.UpdatedAt) {
		return s.sender, nil
	}
	s, err := c.build(ch)
	if err != nil {
		return nil, err
	}
	c.byID[ch.ID] = cachedSender{updatedAt: ch.UpdatedAt, sender: s}
	return s, nil
}

// deliverer logs a notification, sends it with retries and records each attempt.
type deliverer struct {
	log     Log
	senders *senderCache
	retry   RetryPolicy
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) bool
	metrics *metrics
	logger  *slog.Logger
}

// run logs entry (under term), then delivers msg to ch. The returned error is a
// log failure (ErrNotLeader among them); a failed delivery is a status.
func (dl *deliverer) run(ctx context.Context, term int64, entry LogEntry, ch notifiers.Channel, msg *notifiers.Message) (int64, Status, error) {
	id, err := dl.log.BeginNotification(ctx, term, entry)
	if err != nil {
		return 0, "", fmt.Errorf("log notification: %w", err)
	}
	sender, err := dl.senders.get(ch)
	if err != nil {
		// The channel was valid when saved; it no longer builds (a hand edit, or
		// secrets sealed with a key this replica does not have).
		return id, StatusFailed, dl.record(ctx, id, Attempt{N: 1, At: dl.now(), Error: err.Error()}, StatusFailed, ch)
	}
	for n := 1; ; n++ {
		start := time.Now()
		at := dl.now()
		// An attempt under way finishes even when the dispatcher is stopping
		// (bounded by the attempt timeout): cut short, nobody would know whether
		// the channel got the message.
		attemptCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dl.retry.Timeout)
		sendErr := sender.Send(attemptCtx, msg)
		cancel()
		a := Attempt{N: n, At: at, Duration: time.Since(start)}
		status := StatusSent
		if sendErr != nil {
			a.Error, a.Retryable = sendErr.Error(), notifiers.Retryable(sendErr)
			status = StatusFailed
			if a.Retryable && n < dl.retry.Attempts && ctx.Err() == nil {
				status = StatusRetrying
			}
		}
		if err := dl.record(ctx, id, a, status, ch); err != nil {
			return id, status, err
		}
		if status != StatusRetrying {
			return id, status, nil
		}
		if !dl.sleep(ctx, dl.retry.backoff(n)) {
			// Stopping during the back-off: the last attempt failed, so the
			// message counts as not sent and the next leader sends it.
			return id, StatusFailed, errors.Join(ctx.Err(), dl.giveUp(ctx, id, a, ch))
		}
	}
}

func (dl *deliverer) record(ctx context.Context, id int64, a Attempt, status Status, ch notifiers.Channel) error {
	dl.metrics.attempts.WithLabelValues(ch.Type, attemptResult(a)).Inc()
	if status == StatusSent || status == StatusFailed {
		dl.metrics.notifications.WithLabelValues(ch.Type, string(status)).Inc()
	}
	if a.Error != "" {
		dl.logger.Warn("notification attempt failed", "channel", ch.Name, "notification", id,
			"attempt", a.N, "retryable", a.Retryable, "err", a.Error)
	}
	// The record outlives a cancelled round: the attempt happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := dl.log.RecordAttempt(rctx, id, a, status); err != nil {
		return fmt.Errorf("record attempt %d of notification %d: %w", a.N, id, err)
	}
	return nil
}

// giveUp marks a notification failed after its last attempt was recorded as
// retrying.
func (dl *deliverer) giveUp(ctx context.Context, id int64, a Attempt, ch notifiers.Channel) error {
	dl.metrics.notifications.WithLabelValues(ch.Type, string(StatusFailed)).Inc()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := dl.log.RecordAttempt(rctx, id, a, StatusFailed); err != nil {
		return fmt.Errorf("give up notification %d: %w", id, err)
	}
	return nil
}

func attemptResult(a Attempt) string {
	switch {
	case a.Error == "":
		return "ok"
	case a.Retryable:
		return "retryable"
	}
	return "permanent"
}

// Tester sends test messages to a channel, outside grouping but through the
// same retries and log (entries marked test), from any replica.
type Tester struct{ deliver *deliverer }

// NewTester returns a Tester; newSender nil means DefaultSenders. retry's zero
// fields take the defaults.
func NewTester(log Log, newSender func(notifiers.Channel) (notifiers.Sender, error), retry RetryPolicy, logger *slog.Logger) *Tester {
	if newSender == nil {
		newSender = DefaultSenders()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	retry.fill()
	return &Tester{deliver: &deliverer{log: log, senders: newSenderCache(newSender), retry: retry, now: time.Now,
		sleep: sleep, metrics: newMetrics(nil), logger: logger}}
}

// Test sends the sample message to ch and returns the logged notification's ID
// and how it ended.
func (t *Tester) Test(ctx context.Context, ch notifiers.Channel) (int64, Status, error) {
	msg := notifiers.SampleMessage(ch.Name, time.Now(), nil)
	msg.GroupKey = "test:" + ch.Name
	for _, a := range msg.Alerts {
		a.Annotations["summary"] = "Test notification from Amas: " + a.Annotations["summary"]
	}
	entry := LogEntry{GroupKey: msg.GroupKey, ChannelID: ch.ID, ChannelName: ch.Name, ChannelType: ch.Type,
		Status: StatusSending, Test: true, CreatedAt: time.Now(), Firing: len(msg.Firing()), Resolved: len(msg.Resolved())}
	for _, a := range msg.Alerts {
		entry.Alerts = append(entry.Alerts, LogAlert{Fingerprint: a.Fingerprint, Status: a.Status, StartsAt: a.StartsAt})
	}
	return t.deliver.run(ctx, 0, entry, ch, msg)
}
