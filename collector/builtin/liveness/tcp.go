package liveness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// TCPTarget is one port to check. Name is the target tag (default: the
// address).
type TCPTarget struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
}

// TCPConfig is the `tcp` section of agent.yaml.
type TCPConfig struct {
	Targets []TCPTarget `yaml:"targets"`
}

// TCP checks that ports accept connections: check.tcp.up and
// check.tcp.latency_ms (the connect time) per target.
type TCP struct {
	targets []TCPTarget
	now     func() time.Time
}

// NewTCP validates cfg.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New(`tcp: option "targets" must list at least one address`)
	}
	targets := make([]TCPTarget, len(cfg.Targets))
	for i, t := range cfg.Targets {
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			return nil, fmt.Errorf(`tcp: option "targets": entry %d: address %q: %w`, i, t.Address, err)
		}
		if t.Name == "" {
			t.Name = t.Address
		}
		targets[i] = t
	}
	return &TCP{targets: targets, now: time.Now}, nil
}

// Name implements collector.Collector.
func (c *TCP) Name() string { return "tcp" }

type tcpResult struct {
	up      bool
	latency time.Duration
}

// Collect dials every target concurrently and emits from this goroutine.
func (c *TCP) Collect(ctx context.Context, emit collector.Emit) error {
	results := make([]tcpResult, len(c.targets))
	var wg sync.WaitGroup
	for i, t := range c.targets {
		wg.Go(func() { results[i] = dialTCP(ctx, t.Address) })
	}
	wg.Wait()
	w := points.Writer{Emit: emit, Time: c.now()}
	for i, t := range c.targets {
		emitUp(w, "check.tcp.", t.Name, results[i].up, results[i].latency)
	}
	return nil
}

func dialTCP(ctx context.Context, address string) tcpResult {
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return tcpResult{}
	}
	latency := time.Since(start)
	conn.Close()
	return tcpResult{up: true, latency: latency}
}

// emitUp writes <prefix>up and, when up, <prefix>latency_ms.
func emitUp(w points.Writer, prefix, target string, up bool, latency time.Duration) {
	tw := w.With("target", target)
	if !up {
		tw.Add(prefix+"up", 0)
		return
	}
	tw.Add(prefix+"up", 1)
	tw.Add(prefix+"latency_ms", float64(latency)/float64(time.Millisecond))
}
