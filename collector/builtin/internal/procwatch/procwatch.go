// Package procwatch finds processes by name or command-line pattern in /proc
// and reports whether they run and what they use: the process watch of the
// liveness collectors and the HiveServer2/metastore part of the Hive
// collector.
package procwatch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. The kernel fixes
// it at 100 on every architecture Linux distributions ship, and reading it
// (sysconf) would need cgo.
const userHZ = 100

// Target names a group of processes: those whose command name equals Comm,
// or whose command line matches Pattern.
type Target struct {
	Name    string `yaml:"name"`
	Comm    string `yaml:"comm"`
	Pattern string `yaml:"pattern"`
}

type matcher struct {
	name    string
	comm    string
	pattern *regexp.Regexp
}

// Usage sums what the processes of one target use.
type Usage struct {
	Count      int
	CPUSeconds float64 // user + system, since each process started
	RSSBytes   float64
	VMSBytes   float64
	Threads    float64
	ReadBytes  float64 // from /proc/<pid>/io, readable by root or the owner
	WriteBytes float64
	// Oldest is the start time of the longest-running process.
	Oldest time.Time
	pids   []int
}

// Watcher matches the processes of several targets. It keeps the previous
// CPU time of each target to report CPU percent over the interval.
type Watcher struct {
	root     string
	matchers []matcher
	prevCPU  map[string]cpuSample
}

type cpuSample struct {
	seconds float64
	at      time.Time
	pids    string
}

// New validates the targets; option names the agent.yaml option they came
// from, for the error messages.
func New(root, option string, targets []Target) (*Watcher, error) {
	w := &Watcher{root: root, prevCPU: map[string]cpuSample{}}
	for i, t := range targets {
		if t.Name == "" {
			return nil, fmt.Errorf("option %q: entry %d has no name", option, i)
		}
		if (t.Comm == "") == (t.Pattern == "") {
			return nil, fmt.Errorf("option %q: %s: set exactly one of comm and pattern", option, t.Name)
		}
		m := matcher{name: t.Name, comm: t.Comm}
		if t.Pattern != "" {
			re, err := regexp.Compile(t.Pattern)
			if err != nil {
				return nil, fmt.Errorf("option %q: %s: pattern: %w", option, t.Name, err)
			}
			m.pattern = re
		}
		w.matchers = append(w.matchers, m)
	}
	return w, nil
}

// Scan reads /proc once and returns the usage of every target, including
// those with no process (Count 0).
func (w *Watcher) Scan() (map[string]*Usage, error) {
	entries, err := os.ReadDir(filepath.Join(w.root, "proc"))
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	boot, err := w.bootTime()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Usage, len(w.matchers))
	for _, m := range w.matchers {
		out[m.name] = &Usage{}
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		w.scanPID(pid, boot, out)
	}
	return out, nil
}

func (w *Watcher) scanPID(pid int, boot time.Time, out map[string]*Usage) {
	dir := filepath.Join(w.root, "proc", strconv.Itoa(pid))
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return // the process exited between listing and reading
	}
	var cmdline string
	for _, m := range w.matchers {
		if m.pattern != nil && cmdline == "" {
			raw, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
			cmdline = string(bytes.TrimRight(bytes.ReplaceAll(raw, []byte{0}, []byte{' '}), " "))
		}
		if !m.match(strings.TrimSpace(string(comm)), cmdline) {
			continue
		}
		st, err := readStat(dir, boot)
		if err != nil {
			continue
		}
		u := out[m.name]
		u.add(st)
		u.pids = append(u.pids, pid)
		if rb, wb, ok := readIO(dir); ok {
			u.ReadBytes += rb
			u.WriteBytes += wb
		}
	}
}

func (m matcher) match(comm, cmdline string) bool {
	if m.pattern != nil {
		return cmdline != "" && m.pattern.MatchString(cmdline)
	}
	return comm == m.comm
}

type procStat struct {
	cpuSeconds, rss, vms, threads float64
	start                         time.Time
}

func (u *Usage) add(st procStat) {
	u.Count++
	u.CPUSeconds += st.cpuSeconds
	u.RSSBytes += st.rss
	u.VMSBytes += st.vms
	u.Threads += st.threads
	if u.Oldest.IsZero() || st.start.Before(u.Oldest) {
		u.Oldest = st.start
	}
}

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func readStat(dir string, boot time.Time) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return procStat{}, errors.New("short stat")
	}
	// f[0] is field 3 (state): field n is f[n-3].
	num := func(n int) float64 { v, _ := strconv.ParseFloat(f[n-3], 64); return v }
	return procStat{
		cpuSeconds: (num(14) + num(15)) / userHZ,
		threads:    num(20),
		start:      boot.Add(time.Duration(num(22) / userHZ * float64(time.Second))),
		vms:        num(23),
		rss:        num(24) * float64(os.Getpagesize()),
	}, nil
}

func readIO(dir string) (read, write float64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "io"))
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch k {
		case "read_bytes":
			read = n
		case "write_bytes":
			write = n
		}
	}
	return read, write, true
}

func (w *Watcher) bootTime() (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(w.root, "proc", "stat"))
	if err != nil {
		return time.Time{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat btime: %w", err)
			}
			return time.Unix(secs, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat has no btime")
}

// Emit reports each target under prefix (e.g. "process." or
// "hadoop.hive."), tagged by tag=<target name>: up, count, cpu.percent (from
// the second scan on, and only while the same processes run), mem.rss,
// mem.virtual, threads, uptime, io.read_bytes and io.write_bytes.
func (w *Watcher) Emit(pw points.Writer, prefix, tag string, usage map[string]*Usage) {
	for name, u := range usage {
		tw := pw.With(tag, name)
		up := 0.0
		if u.Count > 0 {
			up = 1
		}
		tw.Add(prefix+"up", up)
		tw.Add(prefix+"count", float64(u.Count))
		if u.Count == 0 {
			delete(w.prevCPU, name)
			continue
		}
		tw.Add(prefix+"mem.rss", u.RSSBytes)
		tw.Add(prefix+"mem.virtual", u.VMSBytes)
		tw.Add(prefix+"threads", u.Threads)
		tw.Add(prefix+"uptime", pw.Time.Sub(u.Oldest).Seconds())
		tw.Add(prefix+"io.read_bytes", u.ReadBytes)
		tw.Add(prefix+"io.write_bytes", u.WriteBytes)
		w.emitCPU(tw, prefix, name, u)
	}
}

// emitCPU compares with the previous scan only when the set of processes is
// the same: a restarted process resets its CPU time, and the difference
// would be meaningless.
func (w *Watcher) emitCPU(tw points.Writer, prefix, name string, u *Usage) {
	pids := fmt.Sprint(u.pids)
	prev, ok := w.prevCPU[name]
	w.prevCPU[name] = cpuSample{seconds: u.CPUSeconds, at: tw.Time, pids: pids}
	dt := tw.Time.Sub(prev.at).Seconds()
	if !ok || prev.pids != pids || dt <= 0 || u.CPUSeconds < prev.seconds {
		return
	}
	tw.Add(prefix+"cpu.percent", 100*(u.CPUSeconds-prev.seconds)/dt)
}
