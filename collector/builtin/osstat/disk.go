package osstat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// fsStats is what statfs reports about one mounted filesystem.
type fsStats struct {
	blockSize                       float64
	blocks, blocksFree, blocksAvail float64
	inodes, inodesFree              float64
}

func statfs(path string) (fsStats, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return fsStats{}, err
	}
	return fsStats{
		blockSize:   float64(s.Bsize),
		blocks:      float64(s.Blocks),
		blocksFree:  float64(s.Bfree),
		blocksAvail: float64(s.Bavail),
		inodes:      float64(s.Files),
		inodesFree:  float64(s.Ffree),
	}, nil
}

// collectDiskSpace reports space and inodes of each real filesystem in
// /proc/mounts as the seed's df.bytes.* and df.inodes.*, tagged mount and
// fstype. A device mounted twice (bind mounts) is reported once.
func (c *Collector) collectDiskSpace(ctx context.Context, w points.Writer) error {
	b, err := c.read("/proc/mounts")
	if err != nil {
		return err
	}
	seen := make(map[string]bool)
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		device, mount, fstype := f[0], unescapeMount(f[1]), f[2]
		if c.skipFSType[fstype] || matches(c.skipMount, mount) || seen[device] {
			continue
		}
		seen[device] = true
		st, err := c.statfs(c.path(mount))
		if err != nil {
			errs = append(errs, fmt.Errorf("os: statfs %s: %w", mount, err))
			continue
		}
		emitDiskSpace(w.With("mount", mount, "fstype", fstype), st)
	}
	return errors.Join(errs...)
}

// unescapeMount decodes the octal escapes /proc/mounts uses for spaces,
// tabs and backslashes in mount points.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// emitDiskSpace follows df(1): "free" is what unprivileged users may still
// use, and the percentage is used / (used + free), so the blocks reserved for
// root do not make a full disk look 95 % used.
func emitDiskSpace(w points.Writer, st fsStats) {
	used := (st.blocks - st.blocksFree) * st.blockSize
	avail := st.blocksAvail * st.blockSize
	w.Add("df.bytes.total", st.blocks*st.blockSize)
	w.Add("df.bytes.used", used)
	w.Add("df.bytes.free", avail)
	if used+avail > 0 {
		w.Add("df.bytes.percentused", 100*used/(used+avail))
	}
	if st.inodes == 0 {
		return // filesystems such as btrfs and vfat have no fixed inode table
	}
	iused := st.inodes - st.inodesFree
	w.Add("df.inodes.total", st.inodes)
	w.Add("df.inodes.used", iused)
	w.Add("df.inodes.free", st.inodesFree)
	w.Add("df.inodes.percentused", 100*iused/st.inodes)
}

// diskFields name the first eleven counters after the device name in
// /proc/diskstats, as tcollector's iostat did.
var diskFields = []string{
	"read_requests", "read_merged", "read_sectors", "msec_read",
	"write_requests", "write_merged", "write_sectors", "msec_write",
	"ios_in_progress", "msec_total", "msec_weighted_total",
}

type diskCounters [11]float64

// collectDiskIO reads /proc/diskstats: iostat.disk.* for whole disks (those
// listed in /sys/block) and iostat.part.* for partitions, tagged dev, plus
// the derived util, await, r_await, w_await and svctm over the interval.
func (c *Collector) collectDiskIO(w points.Writer) error {
	b, err := c.read("/proc/diskstats")
	if err != nil {
		return err
	}
	cur := make(map[string]diskCounters)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 14 || matches(c.skipDevice, f[2]) {
			continue
		}
		var d diskCounters
		for i := range d {
			d[i], _ = strconv.ParseFloat(f[3+i], 64)
		}
		dev := f[2]
		cur[dev] = d
		prefix := c.diskPrefix(dev)
		dw := w.With("dev", dev)
		for i, name := range diskFields {
			dw.Add(prefix+name, d[i])
		}
		if prev, ok := c.prevDisk[dev]; ok && c.hasPrevDisk {
			emitDiskDerived(dw, prefix, prev, d, w.Time.Sub(c.prevDiskAt).Seconds())
		}
	}
	c.prevDisk, c.prevDiskAt, c.hasPrevDisk = cur, w.Time, true
	return nil
}

func (c *Collector) diskPrefix(dev string) string {
	// /sys/block names a disk with '/' in its name (cciss/c0d0) with a '!'.
	if _, err := os.Stat(c.path("/sys/block/" + strings.ReplaceAll(dev, "/", "!"))); err == nil {
		return "iostat.disk."
	}
	return "iostat.part."
}

// emitDiskDerived computes what iostat -x shows: the share of the interval
// the device was busy, and the average time per completed request.
func emitDiskDerived(w points.Writer, prefix string, prev, cur diskCounters, seconds float64) {
	if seconds <= 0 {
		return
	}
	delta := func(i int) float64 { return cur[i] - prev[i] }
	reads, writes := delta(0), delta(4)
	busy := delta(9)
	if busy < 0 || reads < 0 || writes < 0 {
		return // counters wrapped or the device was re-added
	}
	w.Add(prefix+"util", min(100, 100*busy/(seconds*1000)))
	w.Add(prefix+"r_await", perRequest(delta(3), reads))
	w.Add(prefix+"w_await", perRequest(delta(7), writes))
	w.Add(prefix+"await", perRequest(delta(3)+delta(7), reads+writes))
	w.Add(prefix+"svctm", perRequest(busy, reads+writes))
}

func perRequest(msec, requests float64) float64 {
	if requests <= 0 {
		return 0
	}
	return msec / requests
}
