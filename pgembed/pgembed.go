// Package pgembed runs the private PostgreSQL that `amas serve` uses when no
// database is configured: it initialises a cluster under a directory on first
// use, starts it as a child process listening on 127.0.0.1 only, and stops it.
//
// PostgreSQL refuses to run as root, so when Amas runs as root the cluster
// belongs to, and runs as, the "postgres" system user (or "nobody").
package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says where the cluster lives and which binaries run it.
type Config struct {
	// Dir holds the cluster (Dir/pgdata), its log and the port it listens on.
	Dir string
	// BinDir holds initdb and postgres; empty means discover (see FindBinDir).
	BinDir string
	// Port to listen on; 0 reuses the port of the previous start when it is
	// free, else picks a free one.
	Port int
}

// Database and user the cluster is initialised with.
const (
	superuser = "amas"
	database  = "amas"
	readyWait = 60 * time.Second
)

// Server is a running embedded PostgreSQL.
type Server struct {
	cmd     *exec.Cmd
	port    int
	logPath string
	exited  chan struct{}
	waitErr error
	log     *slog.Logger
}

// Start initialises the cluster if needed, starts it and waits until the amas
// database accepts connections.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	bin, err := FindBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	owner, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir, owner); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "pgdata")
	if err := initCluster(ctx, bin, dir, data, owner, log); err != nil {
		return nil, err
	}
	if err := stopOrphan(ctx, dir, data, log); err != nil {
		return nil, err
	}
	port, err := choosePort(dir, cfg.Port)
	if err != nil {
		return nil, err
	}
	s := &Server{port: port, logPath: filepath.Join(dir, "postgres.log"), exited: make(chan struct{}), log: log}
	if err := s.start(bin, data, owner); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	log.Info("embedded PostgreSQL running", "dir", data, "port", port, "bin", bin)
	return s, nil
}

// URL is the connection URL of the amas database.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, database)
}

// Stop shuts PostgreSQL down (fast shutdown: sessions are ended, committed data
// is safe) and waits for it, killing it if ctx ends first.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("embedded PostgreSQL did not stop in time and was killed: %w", ctx.Err())
	}
}

func (s *Server) start(bin, data string, owner *user) error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+data)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C in the terminal reaches Amas, which then
	// stops PostgreSQL after flushing, instead of both dying at once.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: owner.credential()}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.cmd.Path, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady connects until PostgreSQL answers, then creates the amas database
// on the first start.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	admin := fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", superuser, s.port)
	for {
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			defer conn.Close(context.Background())
			return createDatabase(ctx, conn)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("embedded PostgreSQL exited (%v); the end of %s:\n%s", s.waitErr, s.logPath, tail(s.logPath, 15))
		case <-ctx.Done():
			return fmt.Errorf("embedded PostgreSQL not ready after %s (%v); the end of %s:\n%s", readyWait, err, s.logPath, tail(s.logPath, 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func createDatabase(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, database).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+database)
	return err
}

// choosePort reuses the port saved in dir when it is free, else picks one and
// saves it, so the URL stays the same across restarts where it can.
func choosePort(dir string, port int) (int, error) {
	file := filepath.Join(dir, "port")
	if port == 0 {
		if b, err := os.ReadFile(file); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && portFree(p) {
				port = p
			}
		}
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	return port, os.WriteFile(file, []byte(strconv.Itoa(port)+"\n"), 0o644)
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var errNoBinaries = errors.New("no PostgreSQL binaries found: run scripts/fetch-postgres.sh (make run does), " +
	"set AMAS_PG_BIN_DIR to a directory holding initdb and postgres, or configure a database with --database-url / AMAS_DATABASE_URL")
