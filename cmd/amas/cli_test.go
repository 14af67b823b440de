package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/amas-eye/amas/store/storetest"
)

// TestAdministrationCommands runs the CLI as an operator would, against a
// fresh database: migrations, a user, and a token captured from the last line.
func TestAdministrationCommands(t *testing.T) {
	db, err := storetest.Create(t.Context(), "cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	amas := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append(args, "--database-url", db.URL, "--log-level", "error"), &out, &errOut)
		if err != nil {
			t.Logf("amas %s: %s", strings.Join(args, " "), errOut.String())
		}
		return out.String(), err
	}

	out, err := amas("migrate", "status")
	if err != nil || !strings.Contains(out, "pending") {
		t.Fatalf("migrate status on an empty database: %v\n%s", err, out)
	}
	if _, err := amas("migrate", "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := amas("migrate", "down", "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := amas("migrate", "up"); err != nil {
		t.Fatal(err)
	}
	if out, _ := amas("migrate", "status"); strings.Contains(out, "pending") {
		t.Fatalf("after up, still pending:\n%s", out)
	}

	if _, err := amas("user", "create", "--username", "alice", "--password", "correct horse", "--role", "editor"); err != nil {
		t.Fatal(err)
	}
	if out, _ := amas("user", "list"); !strings.Contains(out, "alice") || !strings.Contains(out, "editor") {
		t.Errorf("user list:\n%s", out)
	}
	if _, err := amas("user", "create", "--username", "bob", "--password", "correct horse", "--role", "root"); err == nil {
		t.Error("a user with role root was created")
	}

	out, err = amas("token", "create", "--name", "agents", "--role", "ingest")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if token := lines[len(lines)-1]; strings.ContainsAny(token, " \t") || len(token) < 20 {
		t.Errorf("the last line %q is not the token alone", token)
	}
	if _, err := amas("token", "revoke", "--name", "agents"); err != nil {
		t.Fatal(err)
	}
	if out, _ := amas("token", "list"); !strings.Contains(out, "agents") {
		t.Errorf("token list:\n%s", out)
	}
	if _, err := amas("frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
}
