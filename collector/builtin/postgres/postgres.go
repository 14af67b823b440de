// Package postgres is the built-in PostgreSQL collector: connections by
// state, transactions (counters and rates), cache hit ratio, locks by mode,
// database sizes and replication lag, as postgres.<group>.<name>.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/rate"
)

// Config is the `postgres` section of agent.yaml.
type Config struct {
	// DSN is a libpq connection string or URL; the collector reads the
	// statistics views of every database through this one connection.
	DSN string `yaml:"dsn"`
}

// DefaultConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultConfig() Config {
	return Config{DSN: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
}

// Collector reads one PostgreSQL server.
type Collector struct {
	pool     *pgxpool.Pool
	instance string
	now      func() time.Time
	rates    *rate.Tracker
	blocks   map[string][2]float64 // db -> hit, read at the previous collection
}

// New validates cfg and prepares a pool of one connection, opened at the
// first collection.
func New(cfg Config) (*Collector, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf(`postgres: option "dsn": %w`, err)
	}
	pc.MaxConns = 1
	pc.MinConns = 0
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "amas-agent"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf(`postgres: option "dsn": %w`, err)
	}
	instance := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port)))
	return &Collector{pool: pool, instance: instance, now: time.Now, rates: rate.New(), blocks: map[string][2]float64{}}, nil
}

// Name implements collector.Collector.
func (c *Collector) Name() string { return "postgres" }

// Close releases the connection.
func (c *Collector) Close() error {
	c.pool.Close()
	return nil
}

// Collect implements collector.Collector.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	var errs []error
	for _, part := range []func(context.Context, points.Writer) error{
		c.collectConnections, c.collectDatabases, c.collectLocks, c.collectReplication,
	} {
		if err := part(ctx, w); err != nil {
			errs = append(errs, fmt.Errorf("postgres %s: %w", c.instance, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	c.rates.Prune()
	return errors.Join(errs...)
}

const connectionsSQL = `
SELECT datname, COALESCE(state, 'unknown'), count(*)
FROM pg_stat_activity
WHERE datname IS NOT NULL
GROUP BY 1, 2`

func (c *Collector) collectConnections(ctx context.Context, w points.Writer) error {
	rows, err := c.pool.Query(ctx, connectionsSQL)
	if err != nil {
		return fmt.Errorf("connections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var db, state string
		var n int64
		if err := rows.Scan(&db, &state, &n); err != nil {
			return fmt.Errorf("connections: %w", err)
		}
		w.Add("postgres.connections.count", float64(n), "db", db, "state", state)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("connections: %w", err)
	}
	var max int64
	if err := c.pool.QueryRow(ctx, `SELECT setting::bigint FROM pg_settings WHERE name = 'max_connections'`).Scan(&max); err != nil {
		return fmt.Errorf("max_connections: %w", err)
	}
	w.Add("postgres.connections.max", float64(max))
	return nil
}

// databasesSQL skips the databases nobody can connect to (template0), whose
// size cannot be read.
const databasesSQL = `
SELECT s.datname, s.xact_commit, s.xact_rollback, s.blks_read, s.blks_hit,
       s.tup_returned, s.tup_fetched, s.tup_inserted, s.tup_updated, s.tup_deleted,
       s.deadlocks, s.temp_bytes, pg_database_size(s.datid)
FROM pg_stat_database s JOIN pg_database d ON d.oid = s.datid
WHERE d.datallowconn`

type dbStats struct {
	name                                          string
	commit, rollback, read, hit                   float64
	returned, fetched, inserted, updated, deleted float64
	deadlocks, tempBytes, size                    float64
}

func (c *Collector) collectDatabases(ctx context.Context, w points.Writer) error {
	rows, err := c.pool.Query(ctx, databasesSQL)
	if err != nil {
		return fmt.Errorf("databases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s dbStats
		if err := rows.Scan(&s.name, &s.commit, &s.rollback, &s.read, &s.hit, &s.returned, &s.fetched,
			&s.inserted, &s.updated, &s.deleted, &s.deadlocks, &s.tempBytes, &s.size); err != nil {
			return fmt.Errorf("databases: %w", err)
		}
		c.emitDatabase(w.With("db", s.name), s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("databases: %w", err)
	}
	return nil
}

func (c *Collector) emitDatabase(w points.Writer, s dbStats) {
	w.Add("postgres.database.size", s.size)
	w.Add("postgres.transactions.committed", s.commit)
	w.Add("postgres.transactions.rolledback", s.rollback)
	w.Add("postgres.blocks.read", s.read)
	w.Add("postgres.blocks.hit", s.hit)
	w.Add("postgres.rows.returned", s.returned)
	w.Add("postgres.rows.fetched", s.fetched)
	w.Add("postgres.rows.inserted", s.inserted)
	w.Add("postgres.rows.updated", s.updated)
	w.Add("postgres.rows.deleted", s.deleted)
	w.Add("postgres.deadlocks", s.deadlocks)
	w.Add("postgres.temp_bytes", s.tempBytes)
	if r, ok := c.rates.Rate("commit/"+s.name, s.commit, w.Time); ok {
		w.Add("postgres.transactions.commit_rate", r)
	}
	if r, ok := c.rates.Rate("rollback/"+s.name, s.rollback, w.Time); ok {
		w.Add("postgres.transactions.rollback_rate", r)
	}
	// The hit ratio over the interval, not since the statistics reset: a
	// cache that went cold an hour ago should show now, not be averaged away.
	prev, seen := c.blocks[s.name]
	c.blocks[s.name] = [2]float64{s.hit, s.read}
	dHit, dRead := s.hit-prev[0], s.read-prev[1]
	if seen && dHit >= 0 && dRead >= 0 && dHit+dRead > 0 {
		w.Add("postgres.cache.hit_ratio", dHit/(dHit+dRead))
	}
}

const locksSQL = `
SELECT COALESCE(d.datname, 'shared'), l.mode, l.granted, count(*)
FROM pg_locks l LEFT JOIN pg_database d ON d.oid = l.database
GROUP BY 1, 2, 3`

func (c *Collector) collectLocks(ctx context.Context, w points.Writer) error {
	rows, err := c.pool.Query(ctx, locksSQL)
	if err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var db, mode string
		var granted bool
		var n int64
		if err := rows.Scan(&db, &mode, &granted, &n); err != nil {
			return fmt.Errorf("locks: %w", err)
		}
		state := "granted"
		if !granted {
			state = "waiting"
		}
		w.Add("postgres.locks.count", float64(n), "db", db, "mode", mode, "state", state)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	return nil
}

// replicasSQL runs on a primary: how far each standby's replay is behind.
const replicasSQL = `
SELECT COALESCE(NULLIF(application_name, ''), host(client_addr), 'unknown'),
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8,
       COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8
FROM pg_stat_replication`

// standbyDelaySQL runs on a standby: the age of the last replayed
// transaction, which grows while the primary is busy and replay stalls.
const standbyDelaySQL = `
SELECT COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8`

func (c *Collector) collectReplication(ctx context.Context, w points.Writer) error {
	var standby bool
	if err := c.pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	if standby {
		w.Add("postgres.replication.is_standby", 1)
		var delay float64
		if err := c.pool.QueryRow(ctx, standbyDelaySQL).Scan(&delay); err != nil {
			return fmt.Errorf("replication: %w", err)
		}
		w.Add("postgres.replication.replay_delay_seconds", delay)
		return nil
	}
	w.Add("postgres.replication.is_standby", 0)
	rows, err := c.pool.Query(ctx, replicasSQL)
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var lagBytes, lagSeconds float64
		if err := rows.Scan(&name, &lagBytes, &lagSeconds); err != nil {
			return fmt.Errorf("replication: %w", err)
		}
		w.Add("postgres.replication.lag_bytes", lagBytes, "replica", name)
		w.Add("postgres.replication.lag_seconds", lagSeconds, "replica", name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	return nil
}
