package agent

import (
	"io"
	"log/slog"
	"sync"

	"github.com/amas-eye/amas/collector"
)

// instance is one built collector, shared by the jobs that reuse it across
// reloads. It allows one Collect at a time, and closes a collector that holds
// connections (io.Closer) once it is retired and its last Collect returned,
// even one that was abandoned at its timeout.
type instance struct {
	c   collector.Collector
	log *slog.Logger

	mu      sync.Mutex
	running bool
	retired bool
	closed  bool
}

func newInstance(c collector.Collector, log *slog.Logger) *instance {
	return &instance{c: c, log: log}
}

// begin claims the instance for one Collect; false while the previous one is
// still in flight or after it was retired.
func (in *instance) begin() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.running || in.retired {
		return false
	}
	in.running = true
	return true
}

// end releases the claim of begin.
func (in *instance) end() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.running = false
	if in.retired {
		in.closeLocked()
	}
}

// retire takes the instance out of service: no Collect starts again, and it
// is closed now or when its running Collect returns.
func (in *instance) retire() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.retired = true
	if !in.running {
		in.closeLocked()
	}
}

func (in *instance) closeLocked() {
	if in.closed {
		return
	}
	in.closed = true
	if cl, ok := in.c.(io.Closer); ok {
		if err := cl.Close(); err != nil {
			in.log.Warn("closing a collector", "collector", in.c.Name(), "err", err)
		}
	}
}
