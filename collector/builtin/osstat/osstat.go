// Package osstat is the built-in Linux host collector: CPU, load, memory and
// swap, disk space and I/O, network interfaces, socket and TCP/UDP counters,
// processes, open files and uptime, read from /proc, /sys and statfs.
//
// Counters are emitted as the kernel reports them (monotonic); the derived
// values the seed names as rates or percentages (CPU percent, cluster.cpu.usage,
// cluster.net.dev.*, iostat util/await) are computed from the previous
// collection, so they appear from the second collection on.
package osstat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/rate"
)

// Config is the `os` section of agent.yaml.
type Config struct {
	// Root is prepended to /proc and /sys paths and to mount points, so the
	// agent can run in a container with the host's / mounted at, say, /host.
	Root string `yaml:"root"`
	// PerCPU adds per-core CPU series next to the machine totals.
	PerCPU bool `yaml:"per_cpu"`
	// ExcludeFSTypes are skipped when reporting disk space. The default list
	// holds pseudo filesystems and network filesystems, whose statfs can block
	// for minutes when the server is gone.
	ExcludeFSTypes []string `yaml:"exclude_fstypes"`
	// ExcludeMounts is a regular expression of mount points to skip.
	ExcludeMounts string `yaml:"exclude_mounts"`
	// ExcludeDevices is a regular expression of /proc/diskstats devices to skip.
	ExcludeDevices string `yaml:"exclude_devices"`
	// ExcludeInterfaces is a regular expression of network interfaces to skip.
	ExcludeInterfaces string `yaml:"exclude_interfaces"`
}

// DefaultConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultConfig() Config {
	return Config{
		Root:   "/",
		PerCPU: true,
		ExcludeFSTypes: []string{
			"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "cifs", "configfs",
			"debugfs", "devpts", "devtmpfs", "fuse.lxcfs", "fusectl", "hugetlbfs",
			"mqueue", "nfs", "nfs4", "nsfs", "proc", "pstore", "ramfs", "rootfs",
			"rpc_pipefs", "securityfs", "selinuxfs", "smbfs", "squashfs", "sysfs",
			"tmpfs", "tracefs",
		},
		ExcludeMounts:     `^/(dev|proc|sys|run)(/|$)`,
		ExcludeDevices:    `^(loop|ram|fd|sr)\d+$`,
		ExcludeInterfaces: `^lo$`,
	}
}

// Collector reads the host's statistics. It keeps the previous CPU, disk
// and network counters to derive percentages and rates.
type Collector struct {
	root        string
	perCPU      bool
	skipFSType  map[string]bool
	skipMount   *regexp.Regexp
	skipDevice  *regexp.Regexp
	skipIface   *regexp.Regexp
	now         func() time.Time
	statfs      func(path string) (fsStats, error)
	rates       *rate.Tracker
	prevCPU     map[string]cpuTimes
	prevDisk    map[string]diskCounters
	prevDiskAt  time.Time
	hasPrevDisk bool
}

// New validates cfg and returns a Collector.
func New(cfg Config) (*Collector, error) {
	if cfg.Root == "" {
		return nil, errors.New(`os: option "root" must not be empty (use "/" for the local host)`)
	}
	c := &Collector{
		root:       cfg.Root,
		perCPU:     cfg.PerCPU,
		skipFSType: make(map[string]bool, len(cfg.ExcludeFSTypes)),
		now:        time.Now,
		statfs:     statfs,
		rates:      rate.New(),
		prevCPU:    make(map[string]cpuTimes),
	}
	for _, t := range cfg.ExcludeFSTypes {
		c.skipFSType[t] = true
	}
	var err error
	if c.skipMount, err = compile("exclude_mounts", cfg.ExcludeMounts); err != nil {
		return nil, err
	}
	if c.skipDevice, err = compile("exclude_devices", cfg.ExcludeDevices); err != nil {
		return nil, err
	}
	if c.skipIface, err = compile("exclude_interfaces", cfg.ExcludeInterfaces); err != nil {
		return nil, err
	}
	return c, nil
}

// compile returns nil for an empty pattern, which means "skip nothing".
func compile(option, pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("os: option %q: %w", option, err)
	}
	return re, nil
}

func matches(re *regexp.Regexp, s string) bool { return re != nil && re.MatchString(s) }

// Name implements collector.Collector.
func (c *Collector) Name() string { return "os" }

// Collect reads every source; a source that cannot be read is reported in the
// returned error but does not stop the others.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now()}
	var errs []error
	for _, part := range []func(points.Writer) error{
		c.collectStat, c.collectLoad, c.collectMemory, c.collectUptime,
		c.collectFiles, c.collectProcesses, c.collectDiskIO, c.collectNetDev,
		c.collectSockstat, c.collectNetstat, c.collectSNMP,
	} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := part(w); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.collectDiskSpace(ctx, w); err != nil {
		errs = append(errs, err)
	}
	c.rates.Prune()
	return errors.Join(errs...)
}

// path joins the configured root with an absolute host path.
func (c *Collector) path(p string) string { return filepath.Join(c.root, p) }

func (c *Collector) read(p string) ([]byte, error) {
	b, err := os.ReadFile(c.path(p))
	if err != nil {
		return nil, fmt.Errorf("os: read %s: %w", p, err)
	}
	return b, nil
}
