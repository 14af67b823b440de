package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/amas-eye/amas/auth"
)

// withAuth opens the database of the server settings in args and runs fn with an
// auth service on it.
func withAuth(ctx context.Context, name string, args []string, stderr io.Writer, extra func(*flag.FlagSet),
	fn func(*auth.Service) error) error {
	cfg, _, err := serverFlags(name, args, stderr, extra)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	return fn(auth.NewService(db.Store, auth.Options{}, log))
}

func user(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("user needs create, passwd or list")
	}
	sub, rest := args[0], args[1:]
	var username, password, role string
	flags := func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "account name")
		fs.StringVar(&password, "password", "", "password (at least 8 characters)")
		fs.StringVar(&role, "role", "viewer", "viewer, editor or admin")
	}
	return withAuth(ctx, "user "+sub, rest, stderr, flags, func(svc *auth.Service) error {
		switch sub {
		case "create":
			r, err := auth.ParseRole(role, true)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			if username == "" || password == "" {
				return errors.New("user create needs --username and --password")
			}
			if err := svc.CreateUser(ctx, username, password, r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created user %s (%s)\n", username, r)
			return nil
		case "passwd":
			if username == "" || password == "" {
				return errors.New("user passwd needs --username and --password")
			}
			if err := svc.SetPassword(ctx, username, password); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "password of %s changed\n", username)
			return nil
		case "list":
			users, err := svc.ListUsers(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tROLE\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Username, u.Role, u.CreatedAt.Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		}
		return fmt.Errorf("user: unknown subcommand %q (want create, passwd or list)", sub)
	})
}

func token(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("token needs create, list or revoke")
	}
	sub, rest := args[0], args[1:]
	var name, role string
	flags := func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "token name (create), or name or id (revoke)")
		fs.StringVar(&role, "role", "ingest", "ingest, viewer, editor or admin")
	}
	return withAuth(ctx, "token "+sub, rest, stderr, flags, func(svc *auth.Service) error {
		switch sub {
		case "create":
			r, err := auth.ParseRole(role, false)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			if name == "" {
				return errors.New("token create needs --name")
			}
			secret, err := svc.CreateToken(ctx, name, r)
			if err != nil {
				return err
			}
			// The token alone on the last line, so scripts can capture it with tail -1.
			fmt.Fprintf(stdout, "created %s token %q; it is shown only now:\n%s\n", r, name, secret)
			return nil
		case "list":
			tokens, err := svc.ListTokens(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED")
			for _, t := range tokens {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role,
					t.CreatedAt.Format("2006-01-02 15:04"), fmtTime(t.LastUsedAt), fmtTime(t.RevokedAt))
			}
			return tw.Flush()
		case "revoke":
			if name == "" {
				return errors.New("token revoke needs --name (a token's name or id)")
			}
			if err := svc.RevokeToken(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked token %s\n", name)
			return nil
		}
		return fmt.Errorf("token: unknown subcommand %q (want create, list or revoke)", sub)
	})
}

// fmtTime prints an optional time for a listing; "-" when unset.
func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}
