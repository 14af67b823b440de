package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// PutPath is the server's OpenTSDB-compatible write endpoint; ?details makes a
// 400 say which points were refused and why.
const PutPath = "/api/put?details"

const (
	minBackoff       = time.Second
	maxRetryAfter    = time.Hour // a bogus Retry-After must not stall the agent for days
	maxResponseBytes = 1 << 20
	maxLoggedErrors  = 20 // per rejected batch; the rest are counted
)

// Target is where the agent ships and with which token. It changes on reload.
type Target struct {
	Server string
	Token  string
}

// Shipper sends the spool's batches to the server, oldest first, and
// acknowledges each once the server committed it (any 2xx) or refused it for
// good (400, 413). Anything else (unreachable, 5xx, 429, 401...) leaves the
// batch in the spool and retries after a back-off.
type Shipper struct {
	spool     *Spool
	client    *http.Client
	target    *atomic.Pointer[Target]
	timeout   time.Duration
	backoff   time.Duration // cap of the exponential back-off
	userAgent string
	log       *slog.Logger
	// wait pauses between retries; tests replace it to record the delays.
	wait func(ctx context.Context, d time.Duration) error

	sent     atomic.Int64
	rejected atomic.Int64
}

// NewShipper returns a Shipper reading from spool.
func NewShipper(spool *Spool, target *atomic.Pointer[Target], timeout, maxBackoff time.Duration, userAgent string, log *slog.Logger) *Shipper {
	return &Shipper{
		spool: spool, client: &http.Client{}, target: target, timeout: timeout,
		backoff: maxBackoff, userAgent: userAgent, log: log, wait: sleep,
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type shipState int

const (
	spoolEmpty shipState = iota
	shipped              // one batch left the spool
	blocked              // the server did not take the batch; retry later
)

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) {
	failures := 0
	for {
		state, delay := s.shipOne(ctx, failures)
		switch state {
		case spoolEmpty:
			select {
			case <-ctx.Done():
				return
			case <-s.spool.Ready():
			}
		case shipped:
			failures = 0
		case blocked:
			failures++
			if s.wait(ctx, delay) != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// Drain ships until the spool is empty, and fails as soon as the server does
// not take a batch: used by --once and at shutdown, where waiting is pointless.
func (s *Shipper) Drain(ctx context.Context) error {
	for {
		switch state, _ := s.shipOne(ctx, 0); state {
		case spoolEmpty:
			return nil
		case blocked:
			return fmt.Errorf("server did not take the spooled points; %d bytes stay in the spool for the next start", s.spool.Bytes())
		}
	}
}

func (s *Shipper) shipOne(ctx context.Context, failures int) (shipState, time.Duration) {
	rec, ok, err := s.spool.Peek()
	if err != nil {
		s.log.Error("read spool", "err", err)
		return blocked, s.backoffDelay(failures)
	}
	if !ok {
		return spoolEmpty, 0
	}
	res := s.post(ctx, rec.Payload)
	switch {
	case res.delivered():
		s.spool.Ack(rec)
		s.sent.Add(int64(rec.Points))
		return shipped, 0
	case res.refused():
		s.logRefused(res, rec.Points)
		s.spool.Ack(rec)
		return shipped, 0
	}
	if ctx.Err() != nil {
		return blocked, 0 // shutting down: the batch simply stays spooled
	}
	delay := s.backoffDelay(failures)
	if res.retryAfter > 0 {
		delay = res.retryAfter
	}
	s.log.Warn("ship: server did not take the batch; it stays in the spool", "points", rec.Points,
		"status", res.status, "err", res.err, "retry_in", delay, "spool_bytes", s.spool.Bytes())
	return blocked, delay
}

// backoffDelay doubles from one second up to the cap, with jitter so that
// agents cut off together do not come back together.
func (s *Shipper) backoffDelay(failures int) time.Duration {
	d := s.backoff
	if failures < 30 {
		d = min(minBackoff<<failures, s.backoff)
	}
	return d/2 + rand.N(d/2+1)
}

type putResult struct {
	status     int
	body       []byte
	retryAfter time.Duration
	err        error
}

func (r putResult) delivered() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// refused: the request itself is the problem, so sending it again cannot help.
func (r putResult) refused() bool {
	return r.err == nil && (r.status == http.StatusBadRequest || r.status == http.StatusRequestEntityTooLarge)
}

func (s *Shipper) post(ctx context.Context, payload []byte) putResult {
	t := s.target.Load()
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.Server, "/")+PutPath, bytes.NewReader(payload))
	if err != nil {
		return putResult{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+t.Token)
	req.Header.Set("User-Agent", s.userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return putResult{err: err}
	}
	defer resp.Body.Close()
	// The body only matters for a 400's details; a 2xx is committed whatever
	// happens to its body, so a read error is not a reason to send again.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	res := putResult{status: resp.StatusCode, body: body, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		res.err = errors.New("the server refused the token (check token and its role: ingest, editor or admin)")
	}
	return res
}

// requestContext bounds one request by the shipping timeout. The end of ctx
// (shutdown) does not abort a request already on its way: the server may have
// committed the batch, and dropping its reply would make the next start send
// the batch again. Such a request gets shutdownGrace more to be answered.
func (s *Shipper) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-rctx.Done():
		}
	})
	return rctx, func() {
		stop()
		cancel()
	}
}

// parseRetryAfter reads the seconds or HTTP-date form; 0 means absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// putDetails is the body of an OpenTSDB /api/put?details reply.
type putDetails struct {
	Failed int `json:"failed"`
	Errors []struct {
		Datapoint json.RawMessage `json:"datapoint"`
		Error     string          `json:"error"`
	} `json:"errors"`
}

// logRefused logs each point the server refused and counts them; the good
// points of the same batch were stored, so the batch is not sent again.
func (s *Shipper) logRefused(res putResult, points int) {
	var d putDetails
	if err := json.Unmarshal(res.body, &d); err != nil || d.Failed == 0 {
		s.rejected.Add(int64(points))
		s.log.Error("ship: server refused a whole batch", "status", res.status, "points", points, "reply", truncate(string(res.body), 512))
		return
	}
	s.rejected.Add(int64(d.Failed))
	s.sent.Add(int64(points - d.Failed))
	for i, e := range d.Errors {
		if i == maxLoggedErrors {
			s.log.Error("ship: more points refused", "count", len(d.Errors)-i)
			break
		}
		s.log.Error("ship: server refused a point", "point", string(e.Datapoint), "error", e.Error)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Sent is the number of points the server stored.
func (s *Shipper) Sent() int64 { return s.sent.Load() }

// Rejected is the number of points the server refused.
func (s *Shipper) Rejected() int64 { return s.rejected.Load() }
