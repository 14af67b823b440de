// Package rollup is the rollup role: on plain PostgreSQL it keeps samples_1m and
// samples_1h current, packs them for reading (store.PackRollups), creates the
// daily samples partitions ahead of time and applies retention; on TimescaleDB,
// whose continuous aggregates keep the rollups current, it hands retention to
// the database's policies and packs the aggregates.
package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/amas-eye/amas/store"
)

// Config is the role's settings; zero values take the defaults.
type Config struct {
	// RetentionRaw, Retention1m and Retention1h are how long raw samples, 1-minute
	// and 1-hour rollups are kept.
	RetentionRaw, Retention1m, Retention1h time.Duration
	// RetentionSpans is how long spans are kept; zero keeps them forever.
	RetentionSpans time.Duration
	// Interval is how often pending minutes are rolled up (default 10s).
	Interval time.Duration
	// PartitionsAhead is how many days after today get their partition in advance
	// (default 3).
	PartitionsAhead int
}

const (
	defaultInterval        = 10 * time.Second
	defaultPartitionsAhead = 3
	// maintenanceInterval spaces partition creation and retention, which change
	// little from one minute to the next.
	maintenanceInterval = 5 * time.Minute
	// rollupChunk is the most minutes one RollupPending transaction takes: ingest
	// commits wait for it, so a long backlog is worked off in short steps.
	rollupChunk = 60
	// lockKey is the session advisory lock that elects the one replica doing the
	// work ("amasrlup"); migrations use a different key.
	lockKey int64 = 0x616d6173726c7570
)

// Worker runs the rollup role.
type Worker struct {
	st      *store.Store
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
}

// New returns a worker; reg may be nil to leave its metrics unregistered.
func New(st *store.Store, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Worker {
	if cfg.Interval <= 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.PartitionsAhead <= 0 {
		cfg.PartitionsAhead = defaultPartitionsAhead
	}
	return &Worker{st: st, cfg: cfg, log: log, metrics: newMetrics(reg), now: time.Now}
}

// Run does the role's work until ctx is cancelled, and then returns nil. On plain
// PostgreSQL only the replica holding the rollup lock works; the others retry
// every Interval, so one takes over when the holder stops or loses its connection.
func (w *Worker) Run(ctx context.Context) error {
	if w.st.Timescale() {
		return w.runTimescale(ctx)
	}
	for {
		if err := w.leadWhileLocked(ctx); err != nil && ctx.Err() == nil {
			w.metrics.errors.Inc()
			w.log.Warn("rollup lock lost", "err", err)
		}
		if !sleep(ctx, w.cfg.Interval) {
			return nil
		}
	}
}

// runTimescale replaces the retention policies with the configured periods and
// leaves the rollups and their retention to TimescaleDB's background jobs; it
// packs the rollups whose refresh window has passed, and expires packed rows.
// Replicas may all do it: packing serialises on its markers.
func (w *Worker) runTimescale(ctx context.Context) error {
	if err := w.st.SetRetentionPolicies(ctx, w.cfg.RetentionRaw, w.cfg.Retention1m, w.cfg.Retention1h); err != nil {
		w.metrics.errors.Inc()
		return fmt.Errorf("rollup: %w", err)
	}
	w.log.Info("TimescaleDB continuous aggregates and policies maintain the rollups and retention",
		"retention_raw", w.cfg.RetentionRaw, "retention_1m", w.cfg.Retention1m, "retention_1h", w.cfg.Retention1h)
	for {
		now := w.now()
		if _, err := w.st.PackRollups(ctx, now); err != nil {
			w.fail(ctx, "pack rollups", err)
		}
		w.maintain(ctx, now) // packed rows' retention; spans are a plain partitioned table here too
		if !sleep(ctx, maintenanceInterval) {
			return nil
		}
	}
}

// leadWhileLocked takes the rollup lock if it is free and works until ctx ends or
// the lock's connection fails; it returns nil at once when another replica leads.
func (w *Worker) leadWhileLocked(ctx context.Context) error {
	conn, err := w.st.Pool().Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		return fmt.Errorf("try rollup lock: %w", err)
	}
	if !locked {
		return nil
	}
	defer unlock(conn)
	w.log.Info("rollup lock acquired: this replica rolls up and applies retention")
	ticker := time.NewTicker(w.cfg.Interval)
	defer ticker.Stop()
	var lastMaintenance time.Time
	for {
		// The session lock lives and dies with its connection.
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("rollup lock connection: %w", err)
		}
		w.rollUp(ctx)
		if now := w.now(); now.Sub(lastMaintenance) >= maintenanceInterval {
			w.maintain(ctx, now)
			lastMaintenance = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// unlock releases the lock, or closes the connection so that the pool cannot hand
// out a session still holding it.
func unlock(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

// rollUp works off the pending minutes, packs the spans that have ended and
// updates the lag.
func (w *Worker) rollUp(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.st.RollupPending(ctx, rollupChunk)
		w.metrics.minutes.Add(float64(n))
		if err != nil {
			w.fail(ctx, "roll up pending minutes", err)
			break
		}
		if n < rollupChunk {
			break
		}
	}
	if _, err := w.st.PackRollups(ctx, w.now()); err != nil {
		w.fail(ctx, "pack rollups", err)
	}
	watermark, pending, err := w.st.RollupWatermark(ctx)
	switch {
	case err != nil:
		w.fail(ctx, "read rollup watermark", err)
	case pending:
		w.metrics.lag.Set(max(0, w.now().Sub(watermark).Seconds()))
	default:
		w.metrics.lag.Set(0)
	}
}

// maintain creates the coming days' partitions and applies retention as of now.
func (w *Worker) maintain(ctx context.Context, now time.Time) {
	if err := w.st.CreatePartitionsAhead(ctx, now, w.cfg.PartitionsAhead); err != nil {
		w.fail(ctx, "create partitions ahead", err)
	}
	res, err := w.st.ApplyRetention(ctx, now, w.cfg.RetentionRaw, w.cfg.Retention1m, w.cfg.Retention1h)
	w.metrics.droppedPartitions.Add(float64(len(res.DroppedPartitions)))
	if len(res.DroppedPartitions) > 0 || res.Deleted1m > 0 || res.Deleted1h > 0 || res.DeletedPacked > 0 {
		w.log.Info("retention applied", "dropped_partitions", res.DroppedPartitions,
			"deleted_1m", res.Deleted1m, "deleted_1h", res.Deleted1h, "deleted_packed", res.DeletedPacked)
	}
	if err != nil {
		w.fail(ctx, "apply retention", err)
	}
	w.maintainSpans(ctx, now)
}

// maintainSpans creates the coming days' span partitions and drops expired ones.
func (w *Worker) maintainSpans(ctx context.Context, now time.Time) {
	if err := w.st.CreateSpanPartitionsAhead(ctx, now, w.cfg.PartitionsAhead); err != nil {
		w.fail(ctx, "create span partitions ahead", err)
	}
	if w.cfg.RetentionSpans <= 0 {
		return
	}
	dropped, err := w.st.ApplySpanRetention(ctx, now, w.cfg.RetentionSpans)
	w.metrics.droppedPartitions.Add(float64(len(dropped)))
	if len(dropped) > 0 {
		w.log.Info("span retention applied", "dropped_partitions", dropped)
	}
	if err != nil {
		w.fail(ctx, "apply span retention", err)
	}
}

// fail counts and logs an error, unless it is only the role shutting down.
func (w *Worker) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	w.metrics.errors.Inc()
	w.log.Error(what, "err", err)
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
