package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/amas-eye/amas/ingest"
)

// HeartbeatPath is where the heartbeat goes; the body is an ingest.Heartbeat:
//
//	{"host": "web-1", "ip": "10.0.0.5", "version": "amas 1.2.0", "os": "linux/amd64",
//	 "collectors": [{"name": "cpu", "up": true, "lastError": "", "lastRun": "2025-..."}],
//	 "spoolBytes": 0, "droppedPoints": 0, "intervalSeconds": 30}
const HeartbeatPath = ingest.HeartbeatPath

// Heartbeater posts the agent's heartbeat every interval. A failed post is
// logged and the next one goes out on time: nothing stops the loop but ctx.
type Heartbeater struct {
	client   *http.Client
	target   *atomic.Pointer[Target]
	interval atomic.Int64 // time.Duration; changes on reload
	build    func(ctx context.Context) ingest.Heartbeat
	log      *slog.Logger
}

// NewHeartbeater returns a Heartbeater sending what build returns.
func NewHeartbeater(target *atomic.Pointer[Target], interval time.Duration, build func(context.Context) ingest.Heartbeat, log *slog.Logger) *Heartbeater {
	h := &Heartbeater{client: &http.Client{Timeout: 10 * time.Second}, target: target, build: build, log: log}
	h.SetInterval(interval)
	return h
}

// SetInterval changes the period from the next heartbeat on.
func (h *Heartbeater) SetInterval(d time.Duration) { h.interval.Store(int64(d)) }

// Run sends a heartbeat at once, then every interval, until ctx ends.
func (h *Heartbeater) Run(ctx context.Context) {
	for {
		if err := h.Send(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("heartbeat not delivered; will retry at the next one", "err", err)
		}
		t := time.NewTimer(time.Duration(h.interval.Load()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Send posts one heartbeat. A 404 (a server without the agent registry) is
// not an error: the agent ships points all the same.
func (h *Heartbeater) Send(ctx context.Context) error {
	hb := h.build(ctx)
	hb.IntervalSeconds = int(time.Duration(h.interval.Load()) / time.Second)
	body, err := json.Marshal(hb)
	if err != nil {
		return fmt.Errorf("encode heartbeat: %w", err)
	}
	t := h.target.Load()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.Server, "/")+HeartbeatPath, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("heartbeat request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.Token)
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("post heartbeat: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		h.log.Debug("the server has no agent registry; heartbeat ignored", "path", HeartbeatPath)
		return nil
	case resp.StatusCode >= 300:
		return fmt.Errorf("post heartbeat: %s: %s", resp.Status, truncate(strings.TrimSpace(string(reply)), 256))
	}
	return nil
}

// outboundIP is the local address the agent uses to reach the server: the one
// the server sees, on a host with several interfaces. Dialing UDP sends nothing.
func outboundIP(ctx context.Context, server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return ""
	}
	defer conn.Close()
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}
