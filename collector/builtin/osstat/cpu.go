package osstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// cpuFields are the columns of a cpu line of /proc/stat, in order.
var cpuFields = []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"}

// cpuTimes holds one cpu line of /proc/stat, in USER_HZ ticks.
type cpuTimes []float64

// total is the time elapsed on the CPU. guest and guest_nice are left out
// because the kernel already counts them inside user and nice.
func (t cpuTimes) total() float64 {
	var sum float64
	for i := 0; i < len(t) && i < 8; i++ {
		sum += t[i]
	}
	return sum
}

// collectStat reads /proc/stat: CPU times, interrupts, context switches,
// forks and the running/blocked process counts.
func (c *Collector) collectStat(w points.Writer) error {
	b, err := c.read("/proc/stat")
	if err != nil {
		return err
	}
	cores := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch {
		case f[0] == "cpu":
			c.emitCPU(w, "total", parseFloats(f[1:]))
		case strings.HasPrefix(f[0], "cpu"):
			cores++
			if c.perCPU {
				c.emitCPU(w, strings.TrimPrefix(f[0], "cpu"), parseFloats(f[1:]))
			}
		case f[0] == "intr", f[0] == "ctxt", f[0] == "processes", f[0] == "procs_running", f[0] == "procs_blocked":
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				w.Add("proc.stat."+f[0], v)
			}
		}
	}
	w.Add("cluster.cpu.cores", float64(cores))
	return nil
}

// emitCPU emits the tick counters of one CPU line and, from the second
// collection on, the share of each state over the interval in percent.
func (c *Collector) emitCPU(w points.Writer, cpu string, cur cpuTimes) {
	counter, percent := "proc.stat.cpu", "proc.stat.cpu.percent"
	var extra []string
	if cpu != "total" {
		counter, percent = "proc.stat.cpu.percpu", "proc.stat.cpu.percpu.percent"
		extra = []string{"cpu", cpu}
	}
	for i, v := range cur {
		if i >= len(cpuFields) {
			break
		}
		w.Add(counter, v, append([]string{"type", cpuFields[i]}, extra...)...)
	}
	prev, ok := c.prevCPU[cpu]
	c.prevCPU[cpu] = cur
	if !ok || len(prev) != len(cur) {
		return
	}
	dTotal := cur.total() - prev.total()
	if dTotal <= 0 {
		return
	}
	for i := range cur {
		if i >= len(cpuFields) {
			break
		}
		w.Add(percent, 100*(cur[i]-prev[i])/dTotal, append([]string{"type", cpuFields[i]}, extra...)...)
	}
	if cpu == "total" {
		// The seed's cluster.cpu.usage: the busy fraction, 1 - idle share.
		w.Add("cluster.cpu.usage", 1-(cur[3]-prev[3])/dTotal)
	}
}

func parseFloats(fields []string) []float64 {
	out := make([]float64, 0, len(fields))
	for _, s := range fields {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			break
		}
		out = append(out, v)
	}
	return out
}

// collectLoad reads /proc/loadavg: "0.00 0.21 0.18 1/150 23189".
func (c *Collector) collectLoad(w points.Writer) error {
	b, err := c.read("/proc/loadavg")
	if err != nil {
		return err
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return fmt.Errorf("os: /proc/loadavg: unexpected content %q", b)
	}
	for i, name := range []string{"1min", "5min", "15min"} {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			w.Add("proc.loadavg."+name, v)
		}
	}
	if run, total, ok := strings.Cut(f[3], "/"); ok {
		if v, err := strconv.ParseFloat(run, 64); err == nil {
			w.Add("proc.loadavg.runnable", v)
		}
		if v, err := strconv.ParseFloat(total, 64); err == nil {
			w.Add("proc.loadavg.total_threads", v)
		}
	}
	return nil
}

// collectProcesses counts the processes (the numeric entries of /proc).
func (c *Collector) collectProcesses(w points.Writer) error {
	entries, err := os.ReadDir(c.path("/proc"))
	if err != nil {
		return fmt.Errorf("os: list /proc: %w", err)
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			n++
		}
	}
	w.Add("proc.processes.count", float64(n))
	return nil
}

// collectUptime reads /proc/uptime: seconds up and seconds idle (summed over
// all CPUs).
func (c *Collector) collectUptime(w points.Writer) error {
	b, err := c.read("/proc/uptime")
	if err != nil {
		return err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return fmt.Errorf("os: /proc/uptime: unexpected content %q", b)
	}
	for i, name := range []string{"proc.uptime.total", "proc.uptime.idle"} {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			w.Add(name, v)
		}
	}
	return nil
}

// collectFiles reads /proc/sys/fs/file-nr: allocated handles, free handles
// (always 0 since Linux 2.6) and the maximum.
func (c *Collector) collectFiles(w points.Writer) error {
	b, err := c.read("/proc/sys/fs/file-nr")
	if err != nil {
		return err
	}
	f := parseFloats(strings.Fields(string(b)))
	if len(f) < 3 {
		return fmt.Errorf("os: /proc/sys/fs/file-nr: unexpected content %q", b)
	}
	w.Add("proc.fs.files.open", f[0]-f[1])
	w.Add("proc.fs.files.max", f[2])
	return nil
}
