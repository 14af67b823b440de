package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentListCollectors(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"agent", "--list-collectors"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"os", "mysql", "redis", "postgres", "ping", "process", "tcp", "http", "alive", "prometheus"} {
		if !strings.Contains(out.String(), kind+"\n") {
			t.Errorf("--list-collectors lacks %s:\n%s", kind, out.String())
		}
	}
}

// TestAgentDryRun: --once --dry-run prints the points the file's collectors
// make, as put lines with the host and global tags; a flag overrides the file.
func TestAgentDryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	cfg := "hostname: from-file\ntags:\n  env: test\ncollectors:\n  alive: {}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"the file", nil, "env=test host=from-file"},
		{"a flag overrides the file", []string{"--hostname", "from-flag"}, "env=test host=from-flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"agent", "--config", path, "--once", "--dry-run"}, tc.flags...)
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			var alive string
			for _, line := range strings.Split(stdout.String(), "\n") {
				if strings.HasPrefix(line, "put sys.machine.alive ") {
					alive = line
				}
			}
			if !strings.HasSuffix(alive, " 1 "+tc.want) {
				t.Fatalf("sys.machine.alive line %q, want it to end with \"1 %s\"; output:\n%s", alive, tc.want, stdout.String())
			}
		})
	}
}

func TestAgentConfigErrorsNameTheSetting(t *testing.T) {
	var stdout, stderr bytes.Buffer
	t.Setenv("AMAS_AGENT_SERVER", "")
	t.Setenv("AMAS_AGENT_TOKEN", "")
	err := run(context.Background(), []string{"agent", "--server", "amas:8080"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "server: \"amas:8080\"") || !strings.Contains(err.Error(), "token: required") {
		t.Fatalf("error %v, want it to name server and token", err)
	}
}
