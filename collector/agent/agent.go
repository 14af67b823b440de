// Package agent is `amas agent`: it runs the built-in and script collectors,
// batches their points into an on-disk spool, ships the spool to the server's
// /api/put, sends heartbeats, and serves a local management API.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/script"
	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
)

// Names of the agent's own metrics, emitted with every heartbeat.
const (
	MetricSpoolBytes     = "amas.agent.spool_bytes"     // gauge: batches not yet delivered
	MetricDroppedPoints  = "amas.agent.points_dropped"  // counter: lost because the spool was full
	MetricRejectedPoints = "amas.agent.points_rejected" // counter: refused by the server (400)
	MetricInvalidPoints  = "amas.agent.points_invalid"  // counter: refused by the agent before shipping
	MetricSentPoints     = "amas.agent.points_sent"     // counter: stored by the server
	MetricInvalidLines   = "amas.collector.invalid_lines"
)

const (
	shutdownGrace      = 5 * time.Second // for collectors to return and the spool to drain
	scriptsMinBackoff  = time.Second
	scriptsOnceTimeout = 5 * time.Second
)

// Deps are what an Agent needs besides its configuration.
type Deps struct {
	Factory Factory // built-in collectors; nil runs scripts only
	Version string
	Log     *slog.Logger
	// Load re-reads the configuration (file, environment, flags) for a reload.
	Load func() (Config, error)
	// ReloadOn reloads the configuration at each receive, as POST /reload does:
	// `amas agent` feeds it SIGHUP. Nil: only the API reloads.
	ReloadOn <-chan os.Signal
	Now      func() time.Time
}

// Agent is one running `amas agent`.
type Agent struct {
	deps    Deps
	log     *slog.Logger
	started time.Time

	mu  sync.Mutex // guards cfg and host across reloads
	cfg Config

	host      string
	target    atomic.Pointer[Target]
	batcher   *Batcher
	spool     *Spool // nil in dry-run
	shipper   *Shipper
	scheduler *Scheduler
	scripts   *script.Runner // nil without a collectors dir
	heartbeat *Heartbeater
}

// New builds an agent: it opens the spool and builds every configured
// collector, so configuration mistakes surface before anything runs.
func New(cfg Config, deps Deps) (*Agent, error) {
	a, err := build(cfg, deps)
	if err != nil {
		return nil, err
	}
	if a.spool, err = OpenSpool(cfg.Spool.Dir, cfg.Spool.MaxBytes, deps.Log); err != nil {
		return nil, err
	}
	a.batcher = NewBatcher(a.host, cfg.Tags, cfg.Shipping.BatchSize, a.toSpool)
	a.shipper = NewShipper(a.spool, &a.target, cfg.Shipping.Timeout, cfg.Shipping.MaxBackoff, "amas-agent/"+deps.Version, deps.Log)
	a.heartbeat = NewHeartbeater(&a.target, cfg.Heartbeat.Interval, a.heartbeatBody, deps.Log)
	if err := a.scheduler.Apply(cfg.Collectors); err != nil {
		a.spool.Close()
		return nil, err
	}
	return a, nil
}

// build makes the parts that dry-run shares with a real agent.
func build(cfg Config, deps Deps) (*Agent, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	host, err := hostname(cfg.Hostname)
	if err != nil {
		return nil, err
	}
	a := &Agent{deps: deps, log: deps.Log, started: deps.Now(), cfg: cfg, host: host}
	a.target.Store(&Target{Server: cfg.Server, Token: cfg.Token})
	a.scheduler = NewScheduler(deps.Factory, a.emitFrom, deps.Now, deps.Log)
	if cfg.CollectorsDir != "" {
		a.scripts = script.NewRunner(script.Options{
			Dir: cfg.CollectorsDir, RescanInterval: cfg.Scripts.RescanInterval, KillGrace: cfg.Scripts.KillGrace,
			MinBackoff: min(scriptsMinBackoff, cfg.Scripts.MaxBackoff), MaxBackoff: cfg.Scripts.MaxBackoff,
			OnceTimeout: scriptsOnceTimeout, Limits: ingest.DefaultLimits,
		}, a.emitFrom, a.reportScript, deps.Log)
	}
	return a, nil
}

func hostname(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: not configured and the system's is unreadable: %w", err)
	}
	if !ingest.ValidName(h) {
		return "", fmt.Errorf("hostname: the system's %q cannot be a tag value; set hostname in agent.yaml", h)
	}
	return h, nil
}

func (a *Agent) emitFrom(name string, p collector.Point) {
	if err := a.batcher.Add(p); err != nil {
		a.log.Warn("collector emitted a point the server would refuse; not shipped", "collector", name, "err", err)
	}
}

func (a *Agent) reportScript(r script.Run) {
	emit := func(p collector.Point) { a.emitFrom(r.Name, p) }
	emitHealth(emit, r.Name, r.At, r.Up, r.Took, r.Errors)
	emit(collector.Point{Metric: MetricInvalidLines, Time: r.At, Value: float64(r.InvalidLines), Tags: map[string]string{"collector": r.Name}})
}

// toSpool encodes the batches and appends them with one fsync.
func (a *Agent) toSpool(batches [][]collector.Point) error {
	var errs []error
	bodies, counts := make([][]byte, 0, len(batches)), make([]int, 0, len(batches))
	for _, batch := range batches {
		body, err := EncodeBatch(batch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bodies, counts = append(bodies, body), append(counts, len(batch))
	}
	if len(bodies) > 0 {
		errs = append(errs, a.spool.AppendAll(bodies, counts))
	}
	return errors.Join(errs...)
}

// Run runs the agent until ctx ends, then stops the collectors, spools what
// they produced, gives the server a few seconds to take the spool, and closes it.
func (a *Agent) Run(ctx context.Context) error {
	defer a.spool.Close()
	stopAPI, err := a.serveManagement(ctx)
	if err != nil {
		return err
	}
	defer stopAPI()

	var producers, consumers sync.WaitGroup
	producers.Go(func() { a.scheduler.Run(ctx, shutdownGrace) })
	if a.scripts != nil {
		producers.Go(func() { a.scripts.Run(ctx) })
	}
	batchCtx, stopBatching := context.WithCancel(context.WithoutCancel(ctx))
	consumers.Go(func() { a.batcher.Run(batchCtx, a.config().Shipping.FlushInterval, a.logFlushError) })
	consumers.Go(func() { a.shipper.Run(ctx) })
	consumers.Go(func() { a.heartbeat.Run(ctx) })
	if a.deps.ReloadOn != nil {
		consumers.Go(func() { a.reloadOnSignals(ctx) })
	}
	a.log.Info("agent started", "host", a.host, "server", a.target.Load().Server, "spool_bytes", a.spool.Bytes())

	<-ctx.Done()
	producers.Wait()
	stopBatching() // the last flush happens after the collectors stopped
	consumers.Wait()
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := a.shipper.Drain(drainCtx); err != nil {
		a.log.Warn("shutdown", "err", err)
	}
	return nil
}

func (a *Agent) logFlushError(err error) {
	a.log.Error("spool the batch", "err", err)
}

// CollectOnce runs every collector once and ships the result (--once).
func (a *Agent) CollectOnce(ctx context.Context) error {
	defer a.spool.Close()
	defer a.scheduler.Close()
	a.collectOnce(ctx)
	if err := a.batcher.Flush(); err != nil {
		return err
	}
	return a.shipper.Drain(ctx)
}

func (a *Agent) collectOnce(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.scheduler.CollectOnce(ctx) })
	if a.scripts != nil {
		wg.Go(func() {
			if err := a.scripts.RunOnce(ctx); err != nil {
				a.log.Warn("script collectors", "err", err)
			}
		})
	}
	wg.Wait()
}

// DryRun runs every collector once and writes the points it would send to out
// as OpenTSDB put lines, host and global tags included (--once --dry-run).
func DryRun(ctx context.Context, cfg Config, deps Deps, out io.Writer) error {
	a, err := build(cfg, deps)
	if err != nil {
		return err
	}
	var writeErr error
	a.batcher = NewBatcher(a.host, cfg.Tags, cfg.Shipping.BatchSize, func(batches [][]collector.Point) error {
		for _, batch := range batches {
			for _, p := range batch {
				if _, err := fmt.Fprintln(out, FormatPut(p)); err != nil {
					writeErr = err
				}
			}
		}
		return nil
	})
	if err := a.scheduler.Apply(cfg.Collectors); err != nil {
		return err
	}
	defer a.scheduler.Close()
	a.collectOnce(ctx)
	if err := a.batcher.Flush(); err != nil {
		return err
	}
	return writeErr
}

func (a *Agent) config() Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Reload re-reads the configuration and applies it without touching the
// spool: tags, batch size, server, token, heartbeat interval and the built-in
// collectors change at once; the settings that need a restart are reported.
func (a *Agent) Reload() error {
	if a.deps.Load == nil {
		return errors.New("reload: the agent was started without a configuration file")
	}
	cfg, err := a.deps.Load()
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := cfg.Validate(false); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	host, err := hostname(cfg.Hostname)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := a.scheduler.Apply(cfg.Collectors); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	a.mu.Lock()
	old := a.cfg
	a.cfg, a.host = cfg, host
	a.mu.Unlock()
	a.batcher.Configure(host, cfg.Tags, cfg.Shipping.BatchSize)
	a.target.Store(&Target{Server: cfg.Server, Token: cfg.Token})
	a.heartbeat.SetInterval(cfg.Heartbeat.Interval)
	for _, s := range restartOnly(old, cfg) {
		a.log.Warn("reload: setting changed; it takes effect at the next restart", "setting", s)
	}
	a.log.Info("configuration reloaded", "collectors", len(cfg.Collectors))
	return nil
}

// reloadOnSignals reloads at each signal until ctx ends; a failed reload keeps
// the running configuration and is logged, as the API would answer it.
func (a *Agent) reloadOnSignals(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-a.deps.ReloadOn:
			if err := a.Reload(); err != nil {
				a.log.Error("configuration not reloaded; the running one is kept", "signal", sig, "err", err)
			}
		}
	}
}

// restartOnly names the changed settings Reload cannot apply to a running agent.
func restartOnly(old, cfg Config) []string {
	var out []string
	for _, c := range []struct {
		name    string
		changed bool
	}{
		{"collectors_dir", old.CollectorsDir != cfg.CollectorsDir},
		{"scripts", old.Scripts != cfg.Scripts},
		{"spool", old.Spool != cfg.Spool},
		{"management.listen", old.Management != cfg.Management},
		{"shipping.flush_interval", old.Shipping.FlushInterval != cfg.Shipping.FlushInterval},
		{"shipping.timeout", old.Shipping.Timeout != cfg.Shipping.Timeout},
		{"shipping.max_backoff", old.Shipping.MaxBackoff != cfg.Shipping.MaxBackoff},
	} {
		if c.changed {
			out = append(out, c.name)
		}
	}
	return out
}

// Collectors lists built-in then script collectors.
func (a *Agent) Collectors() []CollectorStatus {
	out := a.scheduler.Statuses()
	if a.scripts == nil {
		return out
	}
	for _, s := range a.scripts.Statuses() {
		out = append(out, CollectorStatus{
			Name: s.Name, Type: "script", Enabled: s.State != "disabled", IntervalSeconds: float64(s.IntervalSeconds),
			Up: s.Up, LastError: s.LastError, LastRun: s.LastRun, LastDurationSeconds: s.LastDuration.Seconds(),
			Errors: s.Errors, InvalidLines: s.InvalidLines, State: s.State, Path: s.Path,
		})
	}
	return out
}

// SetEnabled switches a built-in or script collector on or off until the next
// reload (built-in) or restart (script).
func (a *Agent) SetEnabled(name string, on bool) error {
	if a.scheduler.SetEnabled(name, on) {
		return nil
	}
	if a.scripts == nil {
		return fmt.Errorf("%w: %q", script.ErrUnknownScript, name)
	}
	return a.scripts.SetEnabled(name, on)
}

func (a *Agent) heartbeatBody(ctx context.Context) ingest.Heartbeat {
	a.mu.Lock()
	host := a.host
	a.mu.Unlock()
	collectors := a.Collectors()
	hb := ingest.Heartbeat{
		Host: host, IP: outboundIP(ctx, a.target.Load().Server), Version: a.deps.Version,
		OS: runtime.GOOS + "/" + runtime.GOARCH, SpoolBytes: a.spool.Bytes(), DroppedPoints: a.spool.Dropped(),
		Collectors: make([]store.AgentCollector, len(collectors)),
	}
	for i, c := range collectors {
		hb.Collectors[i] = store.AgentCollector{Name: c.Name, Up: c.Up, LastError: c.LastError, LastRun: c.LastRun}
	}
	a.emitSelfMetrics()
	return hb
}

// emitSelfMetrics rides on the heartbeat's period, so that the counters behind
// the heartbeat can also be graphed and alerted on.
func (a *Agent) emitSelfMetrics() {
	now := a.deps.Now()
	for _, m := range []struct {
		name  string
		value int64
	}{
		{MetricSpoolBytes, a.spool.Bytes()},
		{MetricDroppedPoints, a.spool.Dropped()},
		{MetricRejectedPoints, a.shipper.Rejected()},
		{MetricInvalidPoints, a.batcher.Invalid()},
		{MetricSentPoints, a.shipper.Sent()},
	} {
		a.emitFrom("agent", collector.Point{Metric: m.name, Time: now, Value: float64(m.value), Tags: map[string]string{}})
	}
}

// Status is the management API's view of the whole agent.
type Status struct {
	Host           string    `json:"host"`
	Version        string    `json:"version"`
	Server         string    `json:"server"`
	StartedAt      time.Time `json:"startedAt"`
	UptimeSeconds  float64   `json:"uptimeSeconds"`
	SpoolBytes     int64     `json:"spoolBytes"`
	DroppedPoints  int64     `json:"droppedPoints"`
	RejectedPoints int64     `json:"rejectedPoints"`
	InvalidPoints  int64     `json:"invalidPoints"`
	SentPoints     int64     `json:"sentPoints"`
	Collectors     int       `json:"collectors"`
	CollectorsUp   int       `json:"collectorsUp"`
}

// Status reports the agent's state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	host := a.host
	a.mu.Unlock()
	st := Status{
		Host: host, Version: a.deps.Version, Server: a.target.Load().Server, StartedAt: a.started,
		UptimeSeconds: a.deps.Now().Sub(a.started).Seconds(), SpoolBytes: a.spool.Bytes(), DroppedPoints: a.spool.Dropped(),
		RejectedPoints: a.shipper.Rejected(), InvalidPoints: a.batcher.Invalid(), SentPoints: a.shipper.Sent(),
	}
	for _, c := range a.Collectors() {
		st.Collectors++
		if c.Up {
			st.CollectorsUp++
		}
	}
	return st
}

// serveManagement starts the management API on its configured address (none
// when empty) and returns the function that stops it.
func (a *Agent) serveManagement(ctx context.Context) (func(), error) {
	addr := a.config().Management.Listen
	if addr == "" {
		return func() {}, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("management.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("management API", "err", err)
		}
	}()
	a.log.Info("management API listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
