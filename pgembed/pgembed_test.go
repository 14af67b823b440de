package pgembed

import (
	"context"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// tempDir is a directory the unprivileged PostgreSQL user can reach when the
// tests run as root (t.TempDir's parents are private).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pgembed-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "postgres")
}

func startOrSkip(t *testing.T, cfg Config) *Server {
	t.Helper()
	if _, err := FindBinDir(cfg.BinDir); err != nil {
		t.Skip(err)
	}
	s, err := Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// TestRestartKeepsData initialises a cluster, writes to it, stops it, and
// finds the data again on the same URL after a restart, also after a crash left
// a stale postmaster.pid behind.
func TestRestartKeepsData(t *testing.T) {
	dir := tempDir(t)
	s := startOrSkip(t, Config{Dir: dir})
	url := s.URL()
	if !strings.HasSuffix(url, "/amas?sslmode=disable") {
		t.Fatalf("URL %s does not name the amas database", url)
	}
	execSQL(t, url, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`)
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	s = startOrSkip(t, Config{Dir: dir})
	if s.URL() != url {
		t.Errorf("restart moved the URL from %s to %s", url, s.URL())
	}
	// A crash: the process is killed, postmaster.pid stays.
	_ = s.cmd.Process.Kill()
	<-s.exited
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid after a kill: %v", err)
	}

	s = startOrSkip(t, Config{Dir: dir})
	conn, err := pgx.Connect(t.Context(), s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(t.Context(), `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restarts: v=%d err=%v", v, err)
	}
}

// TestInterruptedInitdbIsRedone finds a data directory initdb did not finish
// and initialises it again.
func TestInterruptedInitdbIsRedone(t *testing.T) {
	dir := tempDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "pgdata"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pgdata", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startOrSkip(t, Config{Dir: dir})
	execSQL(t, s.URL(), `SELECT 1`)
}

func TestFindBinDirExplicitMustHoldBinaries(t *testing.T) {
	if _, err := FindBinDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no initdb") {
		t.Fatalf("an empty directory was accepted: %v", err)
	}
}

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := osexec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestOrphanIsStopped starts again over a postmaster whose Amas died without
// stopping it: the orphan is shut down and a new one starts on the same data.
func TestOrphanIsStopped(t *testing.T) {
	dir := tempDir(t)
	orphan := startOrSkip(t, Config{Dir: dir})
	execSQL(t, orphan.URL(), `CREATE TABLE kept (v int)`)
	// The Amas that started it is gone.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(deadPID(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startOrSkip(t, Config{Dir: dir})
	select {
	case <-orphan.exited:
	default:
		t.Fatal("the orphaned postmaster still runs")
	}
	execSQL(t, s.URL(), `INSERT INTO kept VALUES (1)`)
}

// TestOtherAmasKeepsItsDatabase refuses to start on a directory whose
// postmaster belongs to another live Amas.
func TestOtherAmasKeepsItsDatabase(t *testing.T) {
	dir := tempDir(t)
	first := startOrSkip(t, Config{Dir: dir})
	other := osexec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(other.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Config{Dir: dir}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "for another Amas") {
		t.Fatalf("second start: %v", err)
	}
	execSQL(t, first.URL(), `SELECT 1`)
}
