// Package collector is the agent side of Amas: the collectors that gather
// metrics on a monitored host, and (in its sub-packages) their scheduling, the
// script collectors, and the shipping of points to the server.
package collector

import (
	"context"
	"time"
)

// Point is one measurement as a collector emits it. The agent adds the host tag
// and the configured global tags before shipping.
type Point struct {
	Metric string
	Time   time.Time
	Value  float64
	Tags   map[string]string
}

// Emit hands one point to the agent.
type Emit func(Point)

// Collector gathers one family of metrics. Collect is called once per interval
// with a context that carries the collection timeout; it emits what it read and
// returns an error when the target could not be read (the agent then reports
// amas.collector.up=0 for it). Implementations keep what they need between calls
// (previous counter values for rates) and must be safe to call from one
// goroutine at a time.
type Collector interface {
	Name() string
	Collect(ctx context.Context, emit Emit) error
}
