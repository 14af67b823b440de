package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

type tags = map[string]string

const adminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testDatabase creates a throwaway database for this test run and drops it
// afterwards.
func testDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 is needed for this test: %v", err)
	}
	name := fmt.Sprintf("amas_pgcollector_%d", os.Getpid())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	return name
}

func TestCollectRealPostgres(t *testing.T) {
	ctx := context.Background()
	db := testDatabase(t)
	dsn := "postgres://postgres@127.0.0.1:5432/" + db + "?sslmode=disable"
	work, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer work.Close(ctx)
	if _, err := work.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	// A second session holds a lock in an open transaction during the
	// collections, so the lock and idle-in-transaction series are non-empty.
	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	c.now = func() time.Time { return t0 }
	first := &pointtest.Sink{}
	if err := c.Collect(ctx, first.Emit); err != nil {
		t.Fatal(err)
	}
	base, _ := first.Lookup("postgres.transactions.committed", tags{"instance": "127.0.0.1_5432", "db": db})
	const commits, rollbacks = 20, 5
	for range commits {
		if _, err := work.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	for range rollbacks {
		work.Exec(ctx, "BEGIN")
		work.Exec(ctx, "ROLLBACK")
	}
	waitForStats(t, work, db, base+commits)

	c.now = func() time.Time { return t0.Add(10 * time.Second) }
	s := &pointtest.Sink{}
	if err := c.Collect(ctx, s.Emit); err != nil {
		t.Fatal(err)
	}
	var size float64
	if err := work.QueryRow(ctx, "SELECT pg_database_size($1)::float8", db).Scan(&size); err != nil {
		t.Fatal(err)
	}
	inst := "127.0.0.1_5432"
	dbTags := tags{"instance": inst, "db": db}
	for _, tc := range []struct {
		name   string
		metric string
		tags   map[string]string
		check  func(float64) bool
	}{
		{"database size", "postgres.database.size", dbTags, func(v float64) bool { return v == size }},
		{"commit rate counts the commits", "postgres.transactions.commit_rate", dbTags, func(v float64) bool { return v >= commits/10.0 }},
		{"rollback rate counts the rollbacks", "postgres.transactions.rollback_rate", dbTags, func(v float64) bool { return v >= rollbacks/10.0 }},
		{"idle in transaction session", "postgres.connections.count", tags{"instance": inst, "db": db, "state": "idle_in_transaction"}, func(v float64) bool { return v == 1 }},
		{"access exclusive lock held", "postgres.locks.count", tags{"instance": inst, "db": db, "mode": "AccessExclusiveLock", "state": "granted"}, func(v float64) bool { return v >= 1 }},
		{"max connections", "postgres.connections.max", tags{"instance": inst}, func(v float64) bool { return v > 0 }},
		{"primary", "postgres.replication.is_standby", tags{"instance": inst}, func(v float64) bool { return v == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := s.Lookup(tc.metric, tc.tags)
			if !ok {
				t.Fatalf("missing %s", pointtest.Key(tc.metric, tc.tags))
			}
			if !tc.check(v) {
				t.Errorf("%s = %v", pointtest.Key(tc.metric, tc.tags), v)
			}
		})
	}
	if r, ok := s.Lookup("postgres.cache.hit_ratio", tags{"instance": inst, "db": "postgres"}); ok && (r < 0 || r > 1) {
		t.Errorf("cache hit ratio %v outside [0, 1]", r)
	}
	if first.Has("postgres.transactions.commit_rate") {
		t.Error("first collection emitted a rate")
	}
}

// waitForStats makes the session publish its pending statistics (PostgreSQL
// 15 batches them for up to ten seconds) and waits until they are visible.
func waitForStats(t *testing.T, conn *pgx.Conn, db string, commits float64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn.Exec(ctx, "SELECT pg_stat_force_next_flush()")
		var got float64
		if err := conn.QueryRow(ctx, "SELECT xact_commit::float8 FROM pg_stat_database WHERE datname = $1", db).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= commits {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pg_stat_database of %s never reached %v commits", db, commits)
}

func TestCollectUnreachableNamesInstance(t *testing.T) {
	c, err := New(Config{DSN: "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Collect(context.Background(), (&pointtest.Sink{}).Emit)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("err = %v, want one naming 127.0.0.1:1", err)
	}
}

func TestNewRejectsBadDSN(t *testing.T) {
	_, err := New(Config{DSN: "postgres://[bad"})
	if err == nil || !strings.Contains(err.Error(), `"dsn"`) {
		t.Errorf("err = %v, want one naming the dsn option", err)
	}
}
