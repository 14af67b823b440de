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

// netDevIn and netDevOut name the receive and transmit columns of
// /proc/net/dev as the seed's proc.net.* metrics; "" skips a column.
var (
	netDevIn  = []string{"bytes", "packets", "errs", "dropped", "fifo.errs", "frame.errs", "compressed", "multicast"}
	netDevOut = []string{"bytes", "packets", "errs", "dropped", "fifo.errs", "collisions", "carrier.errs", "compressed"}
)

// collectNetDev reads /proc/net/dev into proc.net.<field>{iface, direction}
// counters and the seed's per-second cluster.net.dev.receive|transmit
// {interface, type=bytes|packets}.
func (c *Collector) collectNetDev(w points.Writer) error {
	b, err := c.read("/proc/net/dev")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		iface := strings.TrimSpace(name)
		if !ok || strings.Contains(iface, "|") || matches(c.skipIface, iface) {
			continue
		}
		v := parseFloats(strings.Fields(rest))
		if len(v) < 16 {
			return fmt.Errorf("os: /proc/net/dev: interface %s has %d columns, want 16", iface, len(v))
		}
		c.emitInterface(w, iface, v[:8], v[8:16])
	}
	return nil
}

func (c *Collector) emitInterface(w points.Writer, iface string, in, out []float64) {
	for dir, values := range map[string][]float64{"in": in, "out": out} {
		names := netDevIn
		if dir == "out" {
			names = netDevOut
		}
		for i, name := range names {
			w.Add("proc.net."+name, values[i], "iface", iface, "direction", dir)
		}
	}
	for dir, values := range map[string][]float64{"receive": in, "transmit": out} {
		for i, typ := range []string{"bytes", "packets"} {
			key := "net.dev." + dir + "." + typ + "." + iface
			if r, ok := c.rates.Rate(key, values[i], w.Time); ok {
				w.Add("cluster.net.dev."+dir, r, "interface", iface, "type", typ)
			}
		}
	}
}

// collectSockstat reads /proc/net/sockstat into the seed's net.sockstat.*,
// as tcollector's netstat.py named them. Memory is reported in pages by the
// kernel and emitted in bytes.
func (c *Collector) collectSockstat(w points.Writer) error {
	b, err := c.read("/proc/net/sockstat")
	if err != nil {
		return err
	}
	s := parseKeyValueLines(b)
	page := float64(os.Getpagesize())
	type stat struct {
		key, metric string
		tags        []string
		scale       float64
	}
	for _, st := range []stat{
		{"sockets:used", "num_sockets", nil, 1},
		{"TCP:tw", "num_timewait", nil, 1},
		{"TCP:inuse", "sockets_inuse", []string{"type", "tcp"}, 1},
		{"UDP:inuse", "sockets_inuse", []string{"type", "udp"}, 1},
		{"UDPLITE:inuse", "sockets_inuse", []string{"type", "udplite"}, 1},
		{"RAW:inuse", "sockets_inuse", []string{"type", "raw"}, 1},
		{"TCP:orphan", "num_orphans", nil, 1},
		{"TCP:alloc", "sockets_allocated", []string{"type", "tcp"}, 1},
		{"TCP:mem", "memory", []string{"type", "tcp"}, page},
		{"UDP:mem", "memory", []string{"type", "udp"}, page},
		{"FRAG:memory", "memory", []string{"type", "ipfrag"}, 1},
		{"FRAG:inuse", "ipfragqueues", nil, 1},
	} {
		if v, ok := s[st.key]; ok {
			w.Add("net.sockstat."+st.metric, v*st.scale, st.tags...)
		}
	}
	return nil
}

// parseKeyValueLines reads lines such as "TCP: inuse 11 orphan 0 tw 13" into
// {"TCP:inuse": 11, "TCP:orphan": 0, "TCP:tw": 13}.
func parseKeyValueLines(b []byte) map[string]float64 {
	out := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i+1], 64); err == nil {
				out[f[0]+f[i]] = v
			}
		}
	}
	return out
}

// parseHeaderPairs reads the two-line blocks of /proc/net/netstat and
// /proc/net/snmp ("TcpExt: A B" then "TcpExt: 1 2") into
// {"TcpExt": {"A": 1, "B": 2}}.
func parseHeaderPairs(b []byte) map[string]map[string]float64 {
	out := make(map[string]map[string]float64)
	headers := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		prefix, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		names, haveHeader := headers[prefix]
		if !haveHeader {
			headers[prefix] = f
			continue
		}
		values := make(map[string]float64, len(f))
		for i := 0; i < len(f) && i < len(names); i++ {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				values[names[i]] = v
			}
		}
		out[prefix] = values
		delete(headers, prefix)
	}
	return out
}

type netstatName struct {
	metric string
	tags   []string
}

// tcpExtNames maps TcpExt counters of /proc/net/netstat to the seed's
// net.stat.tcp.* names and tags (those of tcollector's netstat.py, plus the
// retransmit family).
var tcpExtNames = map[string]netstatName{
	"SyncookiesSent":        {"syncookies", []string{"type", "sent"}},
	"SyncookiesRecv":        {"syncookies", []string{"type", "received"}},
	"SyncookiesFailed":      {"syncookies", []string{"type", "failed"}},
	"OfoPruned":             {"memory.prune", []string{"type", "drop_ofo_queue"}},
	"RcvPruned":             {"memory.prune", []string{"type", "drop_received"}},
	"DelayedACKs":           {"delayedack", []string{"type", "sent"}},
	"DelayedACKLocked":      {"delayedack", []string{"type", "locked"}},
	"DelayedACKLost":        {"delayedack", []string{"type", "lost"}},
	"ListenOverflows":       {"failed_accept", []string{"reason", "full_acceptq"}},
	"ListenDrops":           {"failed_accept", []string{"reason", "other"}},
	"TCPRenoRecovery":       {"packetloss.recovery", []string{"type", "fast_retransmit"}},
	"TCPSackRecovery":       {"packetloss.recovery", []string{"type", "sack"}},
	"TCPFACKReorder":        {"reording", []string{"detectedby", "fack"}},
	"TCPSACKReorder":        {"reording", []string{"detectedby", "sack"}},
	"TCPRenoReorder":        {"reording", []string{"detectedby", "fast_retransmit"}},
	"TCPTSReorder":          {"reording", []string{"detectedby", "timestamp"}},
	"TCPFullUndo":           {"congestion.recovery", []string{"type", "full_undo"}},
	"TCPPartialUndo":        {"congestion.recovery", []string{"type", "hoe_heuristic"}},
	"TCPDSACKUndo":          {"congestion.recovery", []string{"type", "sack"}},
	"TCPLossUndo":           {"congestion.recovery", []string{"type", "ack"}},
	"TCPAbortOnSyn":         {"abort", []string{"type", "unexpected_syn"}},
	"TCPAbortOnData":        {"abort", []string{"type", "data_after_fin_wait1"}},
	"TCPAbortOnClose":       {"abort", []string{"type", "data_after_close"}},
	"TCPAbortOnMemory":      {"abort", []string{"type", "out_of_memory"}},
	"TCPAbortOnTimeout":     {"abort", []string{"type", "timeout"}},
	"TCPAbortOnLinger":      {"abort", []string{"type", "linger"}},
	"TCPAbortFailed":        {"abort.failed", nil},
	"TCPMemoryPressures":    {"memory.pressure", nil},
	"TCPSACKDiscard":        {"invalid_sack", []string{"type", "invalid"}},
	"TCPDSACKIgnoredOld":    {"invalid_sack", []string{"type", "retransmit"}},
	"TCPDSACKIgnoredNoUndo": {"invalid_sack", []string{"type", "olddup"}},
	"TCPBacklogDrop":        {"receive.queue.full", nil},
	"TCPLostRetransmit":     {"retransmit", []string{"type", "lost"}},
	"TCPFastRetrans":        {"retransmit", []string{"type", "fast"}},
	"TCPSlowStartRetrans":   {"retransmit", []string{"type", "slowstart"}},
	"TCPSynRetrans":         {"retransmit", []string{"type", "syn"}},
}

// collectNetstat reads the TcpExt counters of /proc/net/netstat.
func (c *Collector) collectNetstat(w points.Writer) error {
	b, err := c.read("/proc/net/netstat")
	if err != nil {
		return err
	}
	ext := parseHeaderPairs(b)["TcpExt"]
	// The kernel counts every ListenOverflows again in ListenDrops; report
	// only the other reasons under reason=other.
	if drops, ok := ext["ListenDrops"]; ok {
		ext["ListenDrops"] = drops - ext["ListenOverflows"]
	}
	for key, n := range tcpExtNames {
		if v, ok := ext[key]; ok {
			w.Add("net.stat.tcp."+n.metric, v, n.tags...)
		}
	}
	return nil
}

// snmpNames maps the Tcp and Udp counters of /proc/net/snmp to
// net.stat.tcp.* and net.stat.udp.* (the seed's datagrams and errors).
var snmpNames = map[string]map[string]netstatName{
	"Tcp": {
		"ActiveOpens":  {"opens", []string{"type", "active"}},
		"PassiveOpens": {"opens", []string{"type", "passive"}},
		"AttemptFails": {"attempt_fails", nil},
		"EstabResets":  {"estab_resets", nil},
		"CurrEstab":    {"curr_estab", nil},
		"InSegs":       {"segments", []string{"direction", "in"}},
		"OutSegs":      {"segments", []string{"direction", "out"}},
		"RetransSegs":  {"retransmit", []string{"type", "segments"}},
		"InErrs":       {"errors", []string{"type", "in"}},
		"OutRsts":      {"resets", []string{"direction", "out"}},
	},
	"Udp": {
		"InDatagrams":  {"datagrams", []string{"direction", "in"}},
		"OutDatagrams": {"datagrams", []string{"direction", "out"}},
		"InErrors":     {"errors", []string{"type", "in"}},
		"NoPorts":      {"errors", []string{"type", "noport"}},
		"RcvbufErrors": {"errors", []string{"type", "rcvbuf"}},
		"SndbufErrors": {"errors", []string{"type", "sndbuf"}},
		"InCsumErrors": {"errors", []string{"type", "checksum"}},
	},
}

// collectSNMP reads the Tcp and Udp blocks of /proc/net/snmp.
func (c *Collector) collectSNMP(w points.Writer) error {
	b, err := c.read("/proc/net/snmp")
	if err != nil {
		return err
	}
	blocks := parseHeaderPairs(b)
	for proto, names := range snmpNames {
		prefix := "net.stat." + strings.ToLower(proto) + "."
		for key, n := range names {
			if v, ok := blocks[proto][key]; ok {
				w.Add(prefix+n.metric, v, n.tags...)
			}
		}
	}
	return nil
}
