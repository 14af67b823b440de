package liveness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// PingConfig is the `ping` section of agent.yaml.
type PingConfig struct {
	Targets []string      `yaml:"targets"`
	Count   int           `yaml:"count"`
	Timeout time.Duration `yaml:"timeout"`
	// Method is auto, icmp or tcp. auto sends ICMP echo through an
	// unprivileged datagram socket (allowed by net.ipv4.ping_group_range),
	// then through a raw socket (root or CAP_NET_RAW), and falls back to
	// timing a TCP connect to TCPPort when neither is permitted.
	Method  string `yaml:"method"`
	TCPPort int    `yaml:"tcp_port"`
}

// DefaultPingConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultPingConfig() PingConfig {
	return PingConfig{Count: 3, Timeout: time.Second, Method: "auto", TCPPort: 22}
}

// Ping measures loss and round-trip time as the seed did:
// sys.network.lossrate{dest} (0 to 1) and sys.network.rtt{dest,
// type=min|avg|max|mdev} in milliseconds, both tagged method=icmp|tcp so a
// TCP fallback is never mistaken for ICMP. A target with no answer gets
// lossrate 1 and no RTT (the seed's -1 would pollute averages).
type Ping struct {
	cfg PingConfig
	id  int
	now func() time.Time
}

// NewPing validates cfg.
func NewPing(cfg PingConfig) (*Ping, error) {
	switch {
	case len(cfg.Targets) == 0:
		return nil, errors.New(`ping: option "targets" must list at least one host`)
	case cfg.Count < 1:
		return nil, fmt.Errorf(`ping: option "count" must be at least 1, got %d`, cfg.Count)
	case cfg.Timeout <= 0:
		return nil, fmt.Errorf(`ping: option "timeout" must be positive, got %s`, cfg.Timeout)
	case cfg.Method != "auto" && cfg.Method != "icmp" && cfg.Method != "tcp":
		return nil, fmt.Errorf(`ping: option "method" must be auto, icmp or tcp, got %q`, cfg.Method)
	case cfg.TCPPort < 1 || cfg.TCPPort > 65535:
		return nil, fmt.Errorf(`ping: option "tcp_port" must be a port number, got %d`, cfg.TCPPort)
	}
	return &Ping{cfg: cfg, id: os.Getpid() & 0xffff, now: time.Now}, nil
}

// Name implements collector.Collector.
func (p *Ping) Name() string { return "ping" }

type pingResult struct {
	method string
	rtts   []time.Duration
	sent   int
	err    error
}

// Collect pings every target concurrently and emits from this goroutine.
func (p *Ping) Collect(ctx context.Context, emit collector.Emit) error {
	results := make([]pingResult, len(p.cfg.Targets))
	var wg sync.WaitGroup
	for i, host := range p.cfg.Targets {
		wg.Go(func() { results[i] = p.pingHost(ctx, host, i) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	w := points.Writer{Emit: emit, Time: p.now()}
	var errs []error
	for i, host := range p.cfg.Targets {
		r := results[i]
		if r.err != nil {
			errs = append(errs, fmt.Errorf("ping %s: %w", host, r.err))
			continue
		}
		emitPing(w.With("dest", host, "method", r.method), r)
	}
	return errors.Join(errs...)
}

func emitPing(w points.Writer, r pingResult) {
	w.Add("sys.network.lossrate", 1-float64(len(r.rtts))/float64(r.sent))
	if len(r.rtts) == 0 {
		return
	}
	minRTT, maxRTT, sum, sumSq := math.Inf(1), 0.0, 0.0, 0.0
	for _, d := range r.rtts {
		ms := float64(d) / float64(time.Millisecond)
		minRTT, maxRTT = math.Min(minRTT, ms), math.Max(maxRTT, ms)
		sum += ms
		sumSq += ms * ms
	}
	n := float64(len(r.rtts))
	avg := sum / n
	w.Add("sys.network.rtt", minRTT, "type", "min")
	w.Add("sys.network.rtt", avg, "type", "avg")
	w.Add("sys.network.rtt", maxRTT, "type", "max")
	// mdev as ping(8) computes it: the standard deviation of the samples.
	w.Add("sys.network.rtt", math.Sqrt(math.Max(0, sumSq/n-avg*avg)), "type", "mdev")
}

// pingHost resolves host and pings it with the configured method. A failure
// to resolve or to open any socket is an error; an unanswered echo is loss.
func (p *Ping) pingHost(ctx context.Context, host string, index int) pingResult {
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return pingResult{err: fmt.Errorf("resolve: %w", err)}
	}
	ip := ips[0]
	if p.cfg.Method != "tcp" {
		conn, network, err := listenICMP()
		if err == nil {
			defer conn.Close()
			return p.echo(ctx, conn, network, ip, index)
		}
		if p.cfg.Method == "icmp" {
			return pingResult{err: fmt.Errorf("open ICMP socket: %w", err)}
		}
	}
	return p.tcpPing(ctx, ip)
}

// listenICMP prefers the unprivileged datagram socket and falls back to a
// raw socket.
func listenICMP() (*icmp.PacketConn, string, error) {
	conn, err := icmp.ListenPacket("udp4", "0.0.0.0")
	if err == nil {
		return conn, "udp4", nil
	}
	raw, rawErr := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if rawErr == nil {
		return raw, "ip4:icmp", nil
	}
	return nil, "", errors.Join(err, rawErr)
}

// echo sends Count echo requests one after the other. Each target has its
// own socket; the sequence number carries the target index so that a raw
// socket, which receives every ICMP message of the host, can tell replies
// apart.
func (p *Ping) echo(ctx context.Context, conn *icmp.PacketConn, network string, ip net.IP, index int) pingResult {
	res := pingResult{method: "icmp"}
	var dst net.Addr = &net.IPAddr{IP: ip}
	if network == "udp4" {
		dst = &net.UDPAddr{IP: ip}
	}
	for i := 0; i < p.cfg.Count && ctx.Err() == nil; i++ {
		seq := (index<<8 | i) & 0xffff
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("amas-agent-ping")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			res.err = err
			return res
		}
		res.sent++
		start := time.Now()
		if _, err := conn.WriteTo(b, dst); err != nil {
			continue
		}
		if waitReply(ctx, conn, network, ip, p.id, seq, start.Add(p.cfg.Timeout)) {
			res.rtts = append(res.rtts, time.Since(start))
		}
	}
	return res
}

// waitReply reads until the echo reply for seq arrives or the deadline
// passes. Datagram sockets get the ID rewritten by the kernel, so the ID is
// only checked on raw sockets.
func waitReply(ctx context.Context, conn *icmp.PacketConn, network string, ip net.IP, id, seq int, deadline time.Time) bool {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return false
		}
		if !sameIP(from, ip) {
			continue
		}
		m, err := icmp.ParseMessage(1, buf[:n]) // 1: ICMP for IPv4
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.Seq != seq || (network != "udp4" && echo.ID != id) {
			continue
		}
		return true
	}
}

func sameIP(addr net.Addr, ip net.IP) bool {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return a.IP.Equal(ip)
	case *net.IPAddr:
		return a.IP.Equal(ip)
	}
	return false
}

// tcpPing times TCP handshakes. A refused connection still proves the host
// answered (it sent a reset), so it counts as a reply.
func (p *Ping) tcpPing(ctx context.Context, ip net.IP) pingResult {
	res := pingResult{method: "tcp"}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(p.cfg.TCPPort))
	for i := 0; i < p.cfg.Count && ctx.Err() == nil; i++ {
		res.sent++
		dctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		start := time.Now()
		var d net.Dialer
		conn, err := d.DialContext(dctx, "tcp", addr)
		rtt := time.Since(start)
		cancel()
		if err == nil {
			conn.Close()
			res.rtts = append(res.rtts, rtt)
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			res.rtts = append(res.rtts, rtt)
		}
	}
	return res
}
