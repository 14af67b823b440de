package liveness

import (
	"context"
	"time"

	"github.com/amas-eye/amas/collector"
)

// Alive emits the seed's sys.machine.alive=1 at every collection: the
// server sees the machine as down when the series stops.
type Alive struct {
	now func() time.Time
}

// NewAlive returns the heartbeat collector.
func NewAlive() *Alive { return &Alive{now: time.Now} }

// Name implements collector.Collector.
func (a *Alive) Name() string { return "alive" }

// Collect implements collector.Collector.
func (a *Alive) Collect(_ context.Context, emit collector.Emit) error {
	emit(collector.Point{Metric: "sys.machine.alive", Time: a.now(), Value: 1, Tags: map[string]string{}})
	return nil
}
