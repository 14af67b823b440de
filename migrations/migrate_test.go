package migrations_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/amas-eye/amas/migrations"
	"github.com/amas-eye/amas/store/storetest"
)

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	db, err := storetest.Create(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func tables(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	r, err := migrations.NewRunner(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}

	n, err := r.Up(ctx)
	if err != nil || n != len(all) {
		t.Fatalf("first up applied %d of %d: %v", n, len(all), err)
	}
	fresh := tables(t, pool)
	if len(fresh) == 0 {
		t.Fatal("up created no tables")
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Applied || s.Flavour != r.Flavour() {
			t.Errorf("after up, %04d_%s: applied=%v flavour=%q", s.Version, s.Name, s.Applied, s.Flavour)
		}
	}

	if n, err := r.Down(ctx, 1); err != nil || n != 1 {
		t.Fatalf("down 1 reverted %d: %v", n, err)
	}
	st, _ = r.Status(ctx)
	if st[len(st)-1].Applied {
		t.Errorf("newest migration still applied after down 1")
	}
	if n, err := r.Down(ctx, 0); err != nil || n != len(all)-1 {
		t.Fatalf("down all reverted %d: %v", n, err)
	}
	if left := tables(t, pool); len(left) != 0 {
		t.Fatalf("tables left after down all: %v", left)
	}

	if n, err := r.Up(ctx); err != nil || n != len(all) {
		t.Fatalf("second up applied %d: %v", n, err)
	}
	if again := tables(t, pool); len(again) != len(fresh) {
		t.Fatalf("second up made %v, first made %v", again, fresh)
	}
	if n, err := r.Up(ctx); err != nil || n != 0 {
		t.Fatalf("up on an up-to-date database applied %d: %v", n, err)
	}
}

func TestConcurrentUpDoesNotRace(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	var g errgroup.Group
	applied := make([]int, 4)
	for i := range applied {
		g.Go(func() error {
			r, err := migrations.NewRunner(ctx, pool)
			if err != nil {
				return err
			}
			applied[i], err = r.Up(ctx)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("concurrent up: %v", err)
	}
	all, _ := migrations.All()
	total := 0
	for _, n := range applied {
		total += n
	}
	if total != len(all) {
		t.Fatalf("runners applied %v migrations in all, want %d once", applied, len(all))
	}
}

// TestDownRefusesToDropSealedSecrets: going below 0008 would drop the sealed
// channel secrets, so it is refused while any channel holds some.
func TestDownRefusesToDropSealedSecrets(t *testing.T) {
	ctx := context.Background()
	r, pool := migratedRunner(t)
	below8 := stepsBelow(t, 8)
	if _, err := pool.Exec(ctx, `INSERT INTO notify_channels (name, type, secrets_sealed) VALUES ('ops', 'webhook', '\x01abcd')`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Down(ctx, below8); err == nil || !strings.Contains(err.Error(), "1 notification channels hold sealed secrets") {
		t.Fatalf("down below 0008 with a sealed channel: %v, want it refused", err)
	}
	var kept bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notify_channels WHERE secrets_sealed IS NOT NULL)`).Scan(&kept); err != nil || !kept {
		t.Fatalf("sealed secrets after the refused down: %v, %v", kept, err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM notify_channels`); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Down(ctx, below8); err != nil || n != below8 {
		t.Fatalf("down below 0008 without sealed channels reverted %d: %v", n, err)
	}
}

// migratedRunner is a runner on a fresh database with every migration applied.
func migratedRunner(t *testing.T) (*migrations.Runner, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t)
	r, err := migrations.NewRunner(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, pool
}

// stepsBelow is how many migrations Down must revert to go below version.
func stepsBelow(t *testing.T, version int) int {
	t.Helper()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range all {
		if m.Version >= version {
			n++
		}
	}
	return n
}
