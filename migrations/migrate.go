// Package migrations holds Amas's numbered SQL migrations, embedded in the binary,
// and the runner that applies and reverts them.
//
// A migration is NNNN_name.up.sql with its NNNN_name.down.sql. Where TimescaleDB is
// available, NNNN_name.tsdb.up.sql / .tsdb.down.sql replace the plain files; the
// flavour that was applied is recorded so that down uses the matching file.
// Released migrations are never edited: see README.md in this folder.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed *.sql
var files embed.FS

// lockKey is the advisory lock that serialises migration runs, so two replicas
// starting at once do not race.
const lockKey = 0x616d6173 // "amas"

// noTxMarker on the first line of a file runs it outside a transaction (TimescaleDB
// refuses some statements, such as continuous aggregate creation, inside one).
const noTxMarker = "-- amas:no-transaction"

// ErrDirty is returned when the database holds a migration this binary does not know.
var ErrDirty = errors.New("database has migrations newer than this binary")

// Flavour names which variant of the migrations a database gets.
type Flavour string

const (
	Plain     Flavour = "plain"
	Timescale Flavour = "tsdb"
)

// Migration is one numbered step.
type Migration struct {
	Version int
	Name    string
	up      map[Flavour]string
	down    map[Flavour]string
}

// Status is a migration and whether (and how) it has been applied.
type Status struct {
	Version   int
	Name      string
	Applied   bool
	Flavour   Flavour
	AppliedAt time.Time
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+?)(\.tsdb)?\.(up|down)\.sql$`)

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	return parse(files)
}

func parse(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must be NNNN_name[.tsdb].(up|down).sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		mig := byVersion[version]
		if mig == nil {
			mig = &Migration{Version: version, Name: m[2], up: map[Flavour]string{}, down: map[Flavour]string{}}
			byVersion[version] = mig
		}
		if mig.Name != m[2] {
			return nil, fmt.Errorf("migration %04d has two names: %q and %q", version, mig.Name, m[2])
		}
		flavour := Plain
		if m[3] != "" {
			flavour = Timescale
		}
		if m[4] == "up" {
			mig.up[flavour] = string(body)
		} else {
			mig.down[flavour] = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.up[Plain] == "" || m.down[Plain] == "" {
			return nil, fmt.Errorf("migration %04d_%s needs both .up.sql and .down.sql", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be contiguous from 0001: %04d is missing", i+1)
		}
	}
	return out, nil
}

func (m Migration) sql(up bool, f Flavour) string {
	set := m.down
	if up {
		set = m.up
	}
	if s, ok := set[f]; ok {
		return s
	}
	return set[Plain]
}

// Runner applies migrations to one database.
type Runner struct {
	pool       *pgxpool.Pool
	migrations []Migration
	flavour    Flavour
}

// NewRunner returns a runner whose flavour is Timescale when the database offers
// the timescaledb extension.
func NewRunner(ctx context.Context, pool *pgxpool.Pool) (*Runner, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var timescale bool
	err = pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')`).Scan(&timescale)
	if err != nil {
		return nil, fmt.Errorf("detect timescaledb: %w", err)
	}
	flavour := Plain
	if timescale {
		flavour = Timescale
	}
	return &Runner{pool: pool, migrations: all, flavour: flavour}, nil
}

// Flavour is the variant this runner applies.
func (r *Runner) Flavour() Flavour { return r.flavour }

const createVersionTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    flavour    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// locked runs fn on one connection holding the migration advisory lock.
func (r *Runner) locked(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer c.Release()
	conn := c.Conn()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx is cancelled.
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, lockKey)
	}()
	if _, err := conn.Exec(ctx, createVersionTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return fn(conn)
}

func applied(ctx context.Context, conn *pgx.Conn) (map[int]Status, error) {
	rows, err := conn.Query(ctx, `SELECT version, name, flavour, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	out := map[int]Status{}
	for rows.Next() {
		var s Status
		var flavour string
		if err := rows.Scan(&s.Version, &s.Name, &flavour, &s.AppliedAt); err != nil {
			return nil, err
		}
		s.Flavour, s.Applied = Flavour(flavour), true
		out[s.Version] = s
	}
	return out, rows.Err()
}

// Status lists every known migration, applied or pending.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	var out []Status
	err := r.locked(ctx, func(conn *pgx.Conn) error {
		done, err := applied(ctx, conn)
		if err != nil {
			return err
		}
		for _, m := range r.migrations {
			s, ok := done[m.Version]
			if !ok {
				s = Status{Version: m.Version, Name: m.Name}
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// Up applies every pending migration in order and returns how many it applied.
func (r *Runner) Up(ctx context.Context) (int, error) {
	n := 0
	err := r.locked(ctx, func(conn *pgx.Conn) error {
		done, err := applied(ctx, conn)
		if err != nil {
			return err
		}
		for v := range done {
			if v > len(r.migrations) {
				return fmt.Errorf("%w: version %04d applied, this binary knows up to %04d", ErrDirty, v, len(r.migrations))
			}
		}
		for _, m := range r.migrations {
			if _, ok := done[m.Version]; ok {
				continue
			}
			record := func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, flavour) VALUES ($1, $2, $3)`,
					m.Version, m.Name, string(r.flavour))
				return err
			}
			if err := run(ctx, conn, m.sql(true, r.flavour), record); err != nil {
				return fmt.Errorf("migration %04d_%s up: %w", m.Version, m.Name, err)
			}
			n++
		}
		return nil
	})
	return n, err
}

// Down reverts the newest steps applied migrations (steps <= 0 means all).
func (r *Runner) Down(ctx context.Context, steps int) (int, error) {
	n := 0
	err := r.locked(ctx, func(conn *pgx.Conn) error {
		done, err := applied(ctx, conn)
		if err != nil {
			return err
		}
		for i := len(r.migrations) - 1; i >= 0; i-- {
			if steps > 0 && n == steps {
				break
			}
			m := r.migrations[i]
			s, ok := done[m.Version]
			if !ok {
				continue
			}
			record := func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, m.Version)
				return err
			}
			if err := run(ctx, conn, m.sql(false, s.Flavour), record); err != nil {
				return fmt.Errorf("migration %04d_%s down: %w", m.Version, m.Name, err)
			}
			n++
		}
		return nil
	})
	return n, err
}

// run executes one migration body and its bookkeeping, in one transaction unless the
// body opts out; without a transaction the bookkeeping follows the body.
func run(ctx context.Context, conn *pgx.Conn, body string, record func(context.Context, pgx.Tx) error) error {
	if strings.HasPrefix(body, noTxMarker) {
		if _, err := conn.Exec(ctx, body); err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return record(ctx, tx) })
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, body); err != nil {
			return err
		}
		return record(ctx, tx)
	})
}
