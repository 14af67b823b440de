package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/amas-eye/amas/config"
	"github.com/amas-eye/amas/migrations"
	"github.com/amas-eye/amas/pgembed"
	"github.com/amas-eye/amas/store"
)

// Database is an open store and, when no URL was configured, the private
// PostgreSQL behind it.
type Database struct {
	Store    *store.Store
	URL      string
	embedded *pgembed.Server
}

// OpenDatabase connects to cfg.DatabaseURL, or starts the embedded PostgreSQL
// under cfg.DataDir when it is empty.
func OpenDatabase(ctx context.Context, cfg *config.Server, log *slog.Logger) (*Database, error) {
	db := &Database{URL: cfg.DatabaseURL}
	if db.URL == "" {
		srv, err := pgembed.Start(ctx, pgembed.Config{Dir: filepath.Join(cfg.DataDir, "postgres")}, log)
		if err != nil {
			return nil, fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		db.embedded, db.URL = srv, srv.URL()
	}
	st, err := store.Open(ctx, db.URL)
	if err != nil {
		db.Close(ctx)
		return nil, err
	}
	db.Store = st
	return db, nil
}

// Migrate applies pending migrations and returns how many it applied.
func (db *Database) Migrate(ctx context.Context) (int, error) {
	r, err := migrations.NewRunner(ctx, db.Store.Pool())
	if err != nil {
		return 0, err
	}
	n, err := r.Up(ctx)
	if err != nil {
		return n, err
	}
	return n, db.Store.DetectCapabilities(ctx)
}

// Close closes the pool and stops the embedded PostgreSQL, if any.
func (db *Database) Close(ctx context.Context) {
	if db.Store != nil {
		db.Store.Close()
	}
	if db.embedded != nil {
		_ = db.embedded.Stop(ctx)
	}
}
