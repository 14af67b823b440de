package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amas-eye/amas/store/storetest"
)

// TestRulesExportImport round-trips alert rules through YAML files as a reviewer
// in git would: import, export, edit, import again.
func TestRulesExportImport(t *testing.T) {
	db, err := storetest.Create(t.Context(), "cli_rules")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	amas := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append(args, "--database-url", db.URL, "--log-level", "error"), &out, &errOut)
		if err != nil {
			t.Logf("amas %s: %v %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), err
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "rules.yaml")
	yaml := `rules:
  - name: db threads
    expr: avg(mysql.performance.threads_running{host=~"db-.*"}[5m]) by (host) > 50 critical for 2m
    interval: 15s
    labels: {team: dba}
  - name: heartbeat
    expr: last(agent.up[2m]) by (host) < 1
    no_data: nodata
`
	if err := os.WriteFile(src, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := amas("rules", "import", "--file", src, "--dry-run"); err != nil || !strings.Contains(out, "2 rules, all valid") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if out, _ := amas("rules", "export"); strings.Contains(out, "name:") {
		t.Fatalf("a dry run imported rules:\n%s", out)
	}
	if out, err := amas("rules", "import", "--file", src); err != nil || !strings.Contains(out, "2 created") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	exported := filepath.Join(dir, "exported.yaml")
	if _, err := amas("rules", "export", "--file", exported); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{"name: db threads", `expr: avg(mysql.performance.threads_running{host=~"db-.*"}[5m]) by (host) > 50 critical for 2m`,
		"interval: 15s", "team: dba", "no_data: nodata", "enabled: true"} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	// Re-importing the export changes nothing; an edit updates one rule.
	if out, err := amas("rules", "import", "--file", exported); err != nil || !strings.Contains(out, "0 created, 0 updated, 2 unchanged") {
		t.Fatalf("re-import: %v\n%s", err, out)
	}
	edited := strings.Replace(out, "interval: 15s", "interval: 30s", 1)
	if err := os.WriteFile(exported, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := amas("rules", "import", "--file", exported); err != nil || !strings.Contains(out, "1 updated, 1 unchanged") {
		t.Fatalf("edited import: %v\n%s", err, out)
	}
	// --prune makes the file the whole set: heartbeat is not in this one.
	only := filepath.Join(dir, "only.yaml")
	_ = os.WriteFile(only, []byte("rules:\n  - name: db threads\n    expr: avg(mysql.performance.threads_running[5m]) > 50\n"), 0o644)
	if out, err := amas("rules", "import", "--file", only, "--prune", "--dry-run"); err != nil || !strings.Contains(out, "--prune would delete 1 rules: heartbeat") {
		t.Fatalf("pruning dry run: %v\n%s", err, out)
	}
	if out, err := amas("rules", "import", "--file", only, "--prune"); err != nil || !strings.Contains(out, "0 created, 1 updated, 0 unchanged (1 not in the file deleted)") {
		t.Fatalf("pruning import: %v\n%s", err, out)
	}
	if out, _ := amas("rules", "export"); strings.Contains(out, "heartbeat") || !strings.Contains(out, "db threads") {
		t.Fatalf("export after a pruning import:\n%s", out)
	}
	// A broken file is refused whole, naming the rule and the field.
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("rules:\n  - name: x\n    expr: avg(m[5m]) >> 1\n  - name: y\n    expr: avg(m[5m]) > 1\n    no_data: maybe\n"), 0o644)
	_, err = amas("rules", "import", "--file", bad)
	if err == nil || !strings.Contains(err.Error(), "rules[0] (line 2)") || !strings.Contains(err.Error(), `no_data: "maybe" is not one of`) {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := amas("rules", "import"); err == nil || !strings.Contains(err.Error(), "needs --file") {
		t.Errorf("import without --file: %v", err)
	}
}
