package osstat

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// collectMemory reads /proc/meminfo into the seed's mem.bytes.<field> (bytes,
// every kB field), the derived used and percent values, and the huge page
// counts, which are numbers of pages, not sizes.
func (c *Collector) collectMemory(w points.Writer) error {
	b, err := c.read("/proc/meminfo")
	if err != nil {
		return err
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		key := meminfoKey(name)
		if len(f) == 2 && f[1] == "kB" {
			m[key] = v * 1024
			w.Add("mem.bytes."+key, v*1024)
		} else if page, ok := strings.CutPrefix(key, "hugepages_"); ok {
			w.Add("mem.hugepages."+page, v)
		}
	}
	emitMemoryDerived(w, m)
	return nil
}

// meminfoKey turns "Active(anon)" into "active_anon".
func meminfoKey(name string) string {
	r := strings.NewReplacer("(", "_", ")", "")
	return strings.ToLower(r.Replace(strings.TrimSpace(name)))
}

// emitMemoryDerived computes used memory as free(1) does: total minus free,
// buffers and page cache (Cached plus reclaimable slab), and the used
// percentage from MemAvailable, the kernel's own estimate of what can be
// allocated without swapping.
func emitMemoryDerived(w points.Writer, m map[string]float64) {
	total := m["memtotal"]
	if total > 0 {
		w.Add("mem.bytes.used", total-m["memfree"]-m["buffers"]-m["cached"]-m["sreclaimable"])
		if avail, ok := m["memavailable"]; ok {
			w.Add("mem.percent.used", 100*(total-avail)/total)
		}
	}
	if swap := m["swaptotal"]; swap > 0 {
		w.Add("mem.bytes.swapused", swap-m["swapfree"])
		w.Add("mem.percent.swapused", 100*(swap-m["swapfree"])/swap)
	} else if _, ok := m["swaptotal"]; ok {
		w.Add("mem.bytes.swapused", 0)
		w.Add("mem.percent.swapused", 0)
	}
}
