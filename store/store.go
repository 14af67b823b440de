// Package store is everything in Amas that speaks SQL: the connection pool, series
// resolution, sample queries, accounts and tokens, and capability detection.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/amas-eye/amas/internal/secretkey"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// queryWorkMem is the work_mem of Amas's connections unless the URL sets one.
const queryWorkMem = "64MB"

// defaultMaxConns is the least pool size unless the URL sets pool_max_conns.
const defaultMaxConns = 16

// Store is the handle every SQL-speaking function hangs off.
type Store struct {
	pool       *pgxpool.Pool
	timescale  bool
	noCopy     bool // PGlite: COPY FROM STDIN crashes its wire protocol
	partitions partitionCache
	// secretKeys seal channel secrets; nil stores them plain (UseSecretKeys).
	secretKeys *secretkey.Ring
}

// Open connects to the database at url and detects whether the timescaledb extension
// is installed in it.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// A series query groups up to a million (series, bucket) pairs; PostgreSQL's
	// default 4MB spills that hash to disk, which doubles its time. A work_mem
	// in the URL wins.
	if _, set := cfg.ConnConfig.RuntimeParams["work_mem"]; !set {
		cfg.ConnConfig.RuntimeParams["work_mem"] = queryWorkMem
	}
	// pgxpool's default, max(4, CPUs), is too few for one process running every
	// role: the rollup lock holds a connection for good, ingest writes on two,
	// a large query reads on several and the dispatcher sends in parallel, each
	// waiting on the others. pool_max_conns in the URL wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.DetectCapabilities(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// DetectCapabilities re-reads whether TimescaleDB is installed (after migrations
// may have created the extension).
func (s *Store) DetectCapabilities(ctx context.Context) error {
	err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'), version() LIKE '%Emscripten%'`).Scan(&s.timescale, &s.noCopy)
	if err != nil {
		return fmt.Errorf("detect timescaledb: %w", err)
	}
	return nil
}

// Pool exposes the pgx pool for the packages that own their own SQL (migrations,
// LISTEN connections).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Timescale reports whether samples live in a hypertable with continuous aggregates.
func (s *Store) Timescale() bool { return s.timescale }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// isNoRows maps pgx's no-rows error onto ErrNotFound.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
