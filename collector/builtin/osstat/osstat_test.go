package osstat

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

type tags = map[string]string

// collectSnapshots runs the collector on testdata/snap1 and then, ten seconds
// later, on testdata/snap2 (both recorded from a real host, trimmed), and
// returns what the second collection emitted.
func collectSnapshots(t *testing.T) (*pointtest.Sink, *pointtest.Sink) {
	t.Helper()
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var sinks []*pointtest.Sink
	for i, snap := range []string{"snap1", "snap2"} {
		root, err := filepath.Abs(filepath.Join("testdata", snap))
		if err != nil {
			t.Fatal(err)
		}
		c.root = root
		c.now = func() time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }
		c.statfs = fakeStatfs(root)
		s := &pointtest.Sink{}
		if err := c.Collect(context.Background(), s.Emit); err != nil {
			t.Fatalf("collect %s: %v", snap, err)
		}
		sinks = append(sinks, s)
	}
	return sinks[0], sinks[1]
}

// fakeStatfs answers for the mount points of the recorded /proc/mounts, which
// do not exist on the test machine.
func fakeStatfs(root string) func(string) (fsStats, error) {
	return func(path string) (fsStats, error) {
		st := fsStats{blockSize: 4096, blocks: 1000, blocksFree: 300, blocksAvail: 250, inodes: 100, inodesFree: 40}
		if strings.TrimPrefix(path, root) == "/mnt/my data" {
			st.inodes, st.inodesFree = 0, 0
		}
		return st, nil
	}
}

func TestCollectSecondSnapshot(t *testing.T) {
	_, s := collectSnapshots(t)
	const kB = 1024
	for _, tc := range []struct {
		name string
		want []pointtest.Expect
	}{
		{"cpu counters", []pointtest.Expect{
			{Metric: "proc.stat.cpu", Tags: tags{"type": "user"}, Value: 16198},
			{Metric: "proc.stat.cpu", Tags: tags{"type": "idle"}, Value: 2001909},
			{Metric: "proc.stat.cpu", Tags: tags{"type": "steal"}, Value: 18},
			{Metric: "proc.stat.cpu.percpu", Tags: tags{"cpu": "1", "type": "system"}, Value: 5182},
		}},
		{"cpu percent over the interval", []pointtest.Expect{
			// deltas: user 102, system 9, idle 699, iowait 2; total 812
			{Metric: "proc.stat.cpu.percent", Tags: tags{"type": "user"}, Value: 100 * 102.0 / 812},
			{Metric: "proc.stat.cpu.percent", Tags: tags{"type": "idle"}, Value: 100 * 699.0 / 812},
			{Metric: "proc.stat.cpu.percent", Tags: tags{"type": "iowait"}, Value: 100 * 2.0 / 812},
			{Metric: "proc.stat.cpu.percent", Tags: tags{"type": "guest"}, Value: 0},
			{Metric: "cluster.cpu.usage", Tags: tags{}, Value: 1 - 699.0/812},
			{Metric: "cluster.cpu.cores", Tags: tags{}, Value: 2},
			// cpu0: user 100, system 2, idle 301; total 403
			{Metric: "proc.stat.cpu.percpu.percent", Tags: tags{"cpu": "0", "type": "user"}, Value: 100 * 100.0 / 403},
		}},
		{"processes", []pointtest.Expect{
			{Metric: "proc.stat.processes", Tags: tags{}, Value: 23242},
			{Metric: "proc.stat.procs_running", Tags: tags{}, Value: 2},
			{Metric: "proc.stat.procs_blocked", Tags: tags{}, Value: 0},
			{Metric: "proc.stat.ctxt", Tags: tags{}, Value: 3740675},
			{Metric: "proc.processes.count", Tags: tags{}, Value: 3},
		}},
		{"load, uptime, open files", []pointtest.Expect{
			{Metric: "proc.loadavg.5min", Tags: tags{}, Value: 0.20},
			{Metric: "proc.loadavg.15min", Tags: tags{}, Value: 0.18},
			{Metric: "proc.loadavg.runnable", Tags: tags{}, Value: 2},
			{Metric: "proc.loadavg.total_threads", Tags: tags{}, Value: 150},
			{Metric: "proc.uptime.total", Tags: tags{}, Value: 10182.29},
			{Metric: "proc.fs.files.open", Tags: tags{}, Value: 889},
			{Metric: "proc.fs.files.max", Tags: tags{}, Value: 2466177},
		}},
		{"memory and swap", []pointtest.Expect{
			{Metric: "mem.bytes.memtotal", Tags: tags{}, Value: 24684092 * kB},
			{Metric: "mem.bytes.active_anon", Tags: tags{}, Value: 42368 * kB},
			{Metric: "mem.bytes.used", Tags: tags{}, Value: (24684092 - 23830112 - 3692 - 463728 - 124840) * kB},
			{Metric: "mem.percent.used", Tags: tags{}, Value: 100 * float64(24684092-24073188) / 24684092},
			{Metric: "mem.bytes.swapused", Tags: tags{}, Value: 0},
			{Metric: "mem.hugepages.total", Tags: tags{}, Value: 0},
		}},
		{"disk space per mount, bind mount once, escaped name", []pointtest.Expect{
			{Metric: "df.bytes.total", Tags: tags{"mount": "/", "fstype": "ext4"}, Value: 1000 * 4096},
			{Metric: "df.bytes.used", Tags: tags{"mount": "/", "fstype": "ext4"}, Value: 700 * 4096},
			{Metric: "df.bytes.free", Tags: tags{"mount": "/", "fstype": "ext4"}, Value: 250 * 4096},
			{Metric: "df.bytes.percentused", Tags: tags{"mount": "/", "fstype": "ext4"}, Value: 100 * 700.0 / 950},
			{Metric: "df.inodes.used", Tags: tags{"mount": "/", "fstype": "ext4"}, Value: 60},
			{Metric: "df.inodes.percentused", Tags: tags{"mount": "/", "fstype": "ext4"}, Value: 60},
			{Metric: "df.bytes.total", Tags: tags{"mount": "/mnt/my_data", "fstype": "ext4"}, Value: 1000 * 4096},
		}},
		{"disk io counters and derived values", []pointtest.Expect{
			{Metric: "iostat.disk.read_requests", Tags: tags{"dev": "vda"}, Value: 127870},
			{Metric: "iostat.disk.msec_weighted_total", Tags: tags{"dev": "vda"}, Value: 68968},
			// over 10 s: reads 131 (37 ms), writes 42 (17 ms), busy 8 ms
			{Metric: "iostat.disk.util", Tags: tags{"dev": "vda"}, Value: 100 * 8.0 / 10000},
			{Metric: "iostat.disk.r_await", Tags: tags{"dev": "vda"}, Value: 37.0 / 131},
			{Metric: "iostat.disk.w_await", Tags: tags{"dev": "vda"}, Value: 17.0 / 42},
			{Metric: "iostat.disk.await", Tags: tags{"dev": "vda"}, Value: 54.0 / 173},
			{Metric: "iostat.disk.svctm", Tags: tags{"dev": "vda"}, Value: 8.0 / 173},
			{Metric: "iostat.part.write_requests", Tags: tags{"dev": "vda1"}, Value: 29040},
		}},
		{"network per interface and direction", []pointtest.Expect{
			{Metric: "proc.net.bytes", Tags: tags{"iface": "eth0", "direction": "in"}, Value: 138136102},
			{Metric: "proc.net.bytes", Tags: tags{"iface": "eth0", "direction": "out"}, Value: 415025},
			{Metric: "proc.net.packets", Tags: tags{"iface": "eth0", "direction": "out"}, Value: 3874},
			{Metric: "proc.net.errs", Tags: tags{"iface": "eth0", "direction": "in"}, Value: 0},
			{Metric: "proc.net.dropped", Tags: tags{"iface": "eth0", "direction": "in"}, Value: 0},
			{Metric: "proc.net.fifo.errs", Tags: tags{"iface": "eth0", "direction": "out"}, Value: 0},
			{Metric: "proc.net.frame.errs", Tags: tags{"iface": "eth0", "direction": "in"}, Value: 0},
			{Metric: "proc.net.compressed", Tags: tags{"iface": "ifb0", "direction": "in"}, Value: 0},
			{Metric: "proc.net.carrier.errs", Tags: tags{"iface": "eth0", "direction": "out"}, Value: 0},
			{Metric: "cluster.net.dev.receive", Tags: tags{"interface": "eth0", "type": "bytes"}, Value: 15},
			{Metric: "cluster.net.dev.transmit", Tags: tags{"interface": "eth0", "type": "packets"}, Value: 0.2},
		}},
		{"sockstat", []pointtest.Expect{
			{Metric: "net.sockstat.num_sockets", Tags: tags{}, Value: 34},
			{Metric: "net.sockstat.num_timewait", Tags: tags{}, Value: 3},
			{Metric: "net.sockstat.sockets_inuse", Tags: tags{"type": "tcp"}, Value: 11},
			{Metric: "net.sockstat.num_orphans", Tags: tags{}, Value: 0},
			{Metric: "net.sockstat.memory", Tags: tags{"type": "tcp"}, Value: 142 * 4096},
			{Metric: "net.sockstat.ipfragqueues", Tags: tags{}, Value: 0},
		}},
		{"netstat tcp and udp", []pointtest.Expect{
			{Metric: "net.stat.tcp.delayedack", Tags: tags{"type": "sent"}, Value: 22},
			{Metric: "net.stat.tcp.failed_accept", Tags: tags{"reason": "full_acceptq"}, Value: 3},
			{Metric: "net.stat.tcp.failed_accept", Tags: tags{"reason": "other"}, Value: 2},
			{Metric: "net.stat.tcp.abort", Tags: tags{"type": "timeout"}, Value: 0},
			{Metric: "net.stat.tcp.retransmit", Tags: tags{"type": "syn"}, Value: 0},
			{Metric: "net.stat.tcp.curr_estab", Tags: tags{}, Value: 2},
			{Metric: "net.stat.tcp.opens", Tags: tags{"type": "active"}, Value: 502},
			{Metric: "net.stat.udp.datagrams", Tags: tags{"direction": "in"}, Value: 55},
			{Metric: "net.stat.udp.errors", Tags: tags{"type": "noport"}, Value: 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { pointtest.Check(t, s, tc.want) })
	}
}

func TestCollectSkipsExcludedAndUnratedSeries(t *testing.T) {
	first, second := collectSnapshots(t)
	idx := second.Index()
	for _, tc := range []struct {
		name   string
		sink   *pointtest.Sink
		metric string
		tags   map[string]string
	}{
		{"loop devices are excluded", second, "iostat.disk.read_requests", tags{"dev": "loop0"}},
		{"loopback interface is excluded", second, "proc.net.bytes", tags{"iface": "lo", "direction": "in"}},
		{"pseudo filesystems are excluded", second, "df.bytes.total", tags{"mount": "/proc", "fstype": "proc"}},
		{"tmpfs is excluded", second, "df.bytes.total", tags{"mount": "/dev/shm", "fstype": "tmpfs"}},
		{"bind mount of a reported device is skipped", second, "df.bytes.total", tags{"mount": "/srv/bind", "fstype": "ext4"}},
		{"filesystem without inode table has no inode series", second, "df.inodes.total", tags{"mount": "/mnt/my_data", "fstype": "ext4"}},
		{"first collection has no CPU percent", first, "proc.stat.cpu.percent", tags{"type": "user"}},
		{"first collection has no network rate", first, "cluster.net.dev.receive", tags{"interface": "eth0", "type": "bytes"}},
		{"first collection has no disk util", first, "iostat.disk.util", tags{"dev": "vda"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.sink.Lookup(tc.metric, tc.tags); ok {
				t.Errorf("unexpected %s", pointtest.Key(tc.metric, tc.tags))
			}
		})
	}
	if len(idx) < 200 {
		t.Errorf("second collection emitted %d series, want at least 200", len(idx))
	}
}

func TestCollectReportsMissingSourcesButKeepsOthers(t *testing.T) {
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.root = t.TempDir()
	s := &pointtest.Sink{}
	err = c.Collect(context.Background(), s.Emit)
	if err == nil || !strings.Contains(err.Error(), "/proc/stat") {
		t.Fatalf("Collect on an empty root: err = %v, want one naming /proc/stat", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		option string
	}{
		{"empty root", func(c *Config) { c.Root = "" }, `"root"`},
		{"bad mount regexp", func(c *Config) { c.ExcludeMounts = "(" }, `"exclude_mounts"`},
		{"bad device regexp", func(c *Config) { c.ExcludeDevices = "[" }, `"exclude_devices"`},
		{"bad interface regexp", func(c *Config) { c.ExcludeInterfaces = "*" }, `"exclude_interfaces"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.option) {
				t.Errorf("New: err = %v, want one naming %s", err, tc.option)
			}
		})
	}
}

func TestCollectLocalHost(t *testing.T) {
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := &pointtest.Sink{}
	if err := c.Collect(context.Background(), s.Emit); err != nil {
		t.Fatalf("collect this host: %v", err)
	}
	for _, m := range []string{"proc.stat.cpu", "mem.bytes.memtotal", "proc.loadavg.1min", "df.bytes.total", "proc.net.bytes", "net.sockstat.num_sockets"} {
		if !s.Has(m) {
			t.Errorf("no %s from this host", m)
		}
	}
}
