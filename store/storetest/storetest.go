// Package storetest gives each test package its own throwaway database on the
// PostgreSQL server the tests run against (AMAS_TEST_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/postgres).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/migrations"
	"github.com/amas-eye/amas/store"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AdminURL is the server the throwaway databases are created on.
func AdminURL() string {
	if u := os.Getenv("AMAS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// DB is one throwaway database.
type DB struct {
	Name string
	URL  string
}

// Create makes an empty database named after prefix and returns it; Drop removes it.
func Create(ctx context.Context, prefix string) (*DB, error) {
	if singleDB() {
		return resetSingleDB(ctx)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("amas_test_%s_%s", sanitize(prefix), hex.EncodeToString(b[:]))
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return nil, fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create test database: %w", err)
	}
	u, err := url.Parse(AdminURL())
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &DB{Name: name, URL: u.String()}, nil
}

// Drop removes the database, closing any connection still open to it.
func (d *DB) Drop(ctx context.Context) error {
	if singleDB() {
		return nil
	}
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.Name}.Sanitize()+" WITH (FORCE)")
	return err
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Migrated creates a database, applies every migration and opens a Store on it; the
// database is dropped when the test ends.
func Migrated(t testing.TB) (*store.Store, *DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := Create(ctx, t.Name())
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Drop(context.Background()); err != nil {
			t.Logf("storetest: drop %s: %v", db.Name, err)
		}
	})
	if err := Migrate(ctx, db.URL); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	s, err := store.Open(ctx, db.URL)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(s.Close)
	return s, db
}

// Migrate applies every migration to the database at url.
func Migrate(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := migrations.NewRunner(ctx, pool)
	if err != nil {
		return err
	}
	_, err = r.Up(ctx)
	return err
}
