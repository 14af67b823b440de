package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/migrations"
)

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("migrate needs up, down [N] or status")
	}
	sub, rest := args[0], args[1:]
	steps := 1
	if sub == "down" && len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 0 {
			return fmt.Errorf("migrate down: %q is not a number of migrations (0 reverts all)", rest[0])
		}
		steps, rest = n, rest[1:]
	}
	cfg, _, err := serverFlags("migrate "+sub, rest, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := app.OpenDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	r, err := migrations.NewRunner(ctx, db.Store.Pool())
	if err != nil {
		return err
	}
	switch sub {
	case "up":
		n, err := r.Up(ctx)
		fmt.Fprintf(stdout, "applied %d migration(s) (%s)\n", n, r.Flavour())
		return err
	case "down":
		n, err := r.Down(ctx, steps)
		fmt.Fprintf(stdout, "reverted %d migration(s)\n", n)
		return err
	case "status":
		st, err := r.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tFLAVOUR\tAPPLIED AT")
		for _, s := range st {
			state, at := "pending", ""
			if s.Applied {
				state, at = "applied", s.AppliedAt.Format("2006-01-02 15:04:05Z07:00")
			}
			fmt.Fprintf(tw, "%04d\t%s\t%s\t%s\t%s\n", s.Version, s.Name, state, s.Flavour, at)
		}
		return tw.Flush()
	}
	return fmt.Errorf("migrate: unknown subcommand %q (want up, down [N] or status)", sub)
}
