package liveness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/procwatch"
)

// ProcessConfig is the `process` section of agent.yaml.
type ProcessConfig struct {
	// Root is prepended to /proc, for an agent in a container.
	Root    string             `yaml:"root"`
	Targets []procwatch.Target `yaml:"targets"`
}

// DefaultProcessConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultProcessConfig() ProcessConfig { return ProcessConfig{Root: "/"} }

// Process watches processes by name or command-line pattern:
// process.{up,count,cpu.percent,mem.rss,mem.virtual,threads,uptime,
// io.read_bytes,io.write_bytes}{process=<name>}.
type Process struct {
	watcher *procwatch.Watcher
	now     func() time.Time
}

// NewProcess validates cfg.
func NewProcess(cfg ProcessConfig) (*Process, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New(`process: option "targets" must list at least one process`)
	}
	w, err := procwatch.New(cfg.Root, "targets", cfg.Targets)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	return &Process{watcher: w, now: time.Now}, nil
}

// Name implements collector.Collector.
func (p *Process) Name() string { return "process" }

// Collect implements collector.Collector.
func (p *Process) Collect(_ context.Context, emit collector.Emit) error {
	usage, err := p.watcher.Scan()
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	p.watcher.Emit(points.Writer{Emit: emit, Time: p.now()}, "process.", "process", usage)
	return nil
}
