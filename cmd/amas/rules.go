package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/amas-eye/amas/alerting/expr"
	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
)

// rulesCmd is `amas rules export [--file F]` and `amas rules import --file F
// [--prune] [--dry-run]`: alert rules as YAML, for review in git.
func rulesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("rules needs export or import")
	}
	sub, rest := args[0], args[1:]
	var (
		file          string
		dryRun, prune bool
	)
	cfg, _, err := serverFlags("rules "+sub, rest, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "file", "", "the YAML rules file (export: default standard output; import: required)")
		if sub == "import" {
			fs.BoolVar(&dryRun, "dry-run", false, "check the file and report what would change, without changing anything")
			fs.BoolVar(&prune, "prune", false, "delete the rules the file does not name (their open alerts resolve), so the file is the whole set")
		}
	})
	if err != nil {
		return err
	}
	switch sub {
	case "export", "import":
	default:
		return fmt.Errorf("rules: unknown subcommand %q (want export or import)", sub)
	}
	if sub == "import" && file == "" {
		return errors.New("rules import needs --file")
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	if sub == "export" {
		return exportRules(ctx, db.Store, file, stdout)
	}
	return importRules(ctx, db.Store, file, dryRun, prune, stdout)
}

func exportRules(ctx context.Context, st *store.Store, file string, stdout io.Writer) error {
	recs, err := st.AlertRules(ctx)
	if err != nil {
		return err
	}
	rules := make([]*rule.Rule, len(recs))
	for i, rec := range recs {
		if rules[i], err = rule.FromRecord(rec); err != nil {
			return err
		}
	}
	out, err := rule.EncodeFile(rules)
	if err != nil {
		return err
	}
	if file == "" {
		_, err := stdout.Write(out)
		return err
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	fmt.Fprintf(stdout, "exported %d rules to %s\n", len(rules), file)
	return nil
}

func importRules(ctx context.Context, st *store.Store, file string, dryRun, prune bool, stdout io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	rules, err := rule.DecodeFile(data, expr.Compile)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	recs := make([]store.AlertRuleRecord, len(rules))
	for i, r := range rules {
		// PostgreSQL's regex dialect decides, now rather than at every evaluation.
		if _, filters := r.SeriesQuery(); len(filters) > 0 {
			if err := st.CheckTagRegexes(ctx, filters); err != nil {
				return fmt.Errorf("%s: rule %q: %w", file, r.Name, err)
			}
		}
		if recs[i], err = r.Record(); err != nil {
			return err
		}
	}
	if dryRun {
		fmt.Fprintf(stdout, "%s: %d rules, all valid (dry run: nothing changed)\n", file, len(rules))
		if prune {
			gone, err := rulesNotIn(ctx, st, rules)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "--prune would delete %d rules: %s\n", len(gone), strings.Join(gone, ", "))
		}
		return nil
	}
	res, err := st.ImportAlertRules(ctx, recs, time.Now(), prune)
	if err != nil {
		return err
	}
	kept := "rules not in the file are kept"
	if prune {
		kept = fmt.Sprintf("%d not in the file deleted", res.Deleted)
	}
	fmt.Fprintf(stdout, "imported %s: %d created, %d updated, %d unchanged (%s)\n",
		file, res.Created, res.Updated, res.Unchanged, kept)
	return nil
}

// rulesNotIn names the stored rules that rules does not, sorted.
func rulesNotIn(ctx context.Context, st *store.Store, rules []*rule.Rule) ([]string, error) {
	recs, err := st.AlertRules(ctx)
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, r := range rules {
		named[r.Name] = true
	}
	var gone []string
	for _, rec := range recs {
		if !named[rec.Name] {
			gone = append(gone, rec.Name)
		}
	}
	slices.Sort(gone)
	return gone, nil
}
