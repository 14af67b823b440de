package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/config"
)

// openMigrated opens cfg's database for a one-off command and, unless
// cfg.NoMigrate, brings its schema up to date. The caller closes it.
func openMigrated(ctx context.Context, cfg *config.Server, log *slog.Logger) (*app.Database, error) {
	db, err := app.OpenDatabase(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if !cfg.NoMigrate {
		if _, err := db.Migrate(ctx); err != nil {
			db.Close(context.Background())
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return db, nil
}
