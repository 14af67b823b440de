package liveness

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
	"github.com/amas-eye/amas/collector/builtin/internal/procwatch"
)

type tags = map[string]string

func TestAlive(t *testing.T) {
	s := &pointtest.Sink{}
	if err := NewAlive().Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	pointtest.Check(t, s, []pointtest.Expect{{Metric: "sys.machine.alive", Tags: tags{}, Value: 1}})
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := NewTCP(TCPConfig{Targets: []TCPTarget{
		{Name: "listener", Address: l.Addr().String()},
		{Name: "closed", Address: closedPort(t)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := &pointtest.Sink{}
	if err := c.Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	pointtest.Check(t, s, []pointtest.Expect{
		{Metric: "check.tcp.up", Tags: tags{"target": "listener"}, Value: 1},
		{Metric: "check.tcp.up", Tags: tags{"target": "closed"}, Value: 0},
	})
	if v, ok := s.Lookup("check.tcp.latency_ms", tags{"target": "listener"}); !ok || v <= 0 {
		t.Errorf("latency of the listener = %v, %v; want > 0", v, ok)
	}
	if _, ok := s.Lookup("check.tcp.latency_ms", tags{"target": "closed"}); ok {
		t.Error("a closed port has a latency")
	}
}

func TestHTTPCheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fine")) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := NewHTTP(HTTPConfig{Targets: []HTTPTarget{
		{Name: "ok", URL: srv.URL + "/ok"},
		{Name: "broken", URL: srv.URL + "/broken"},
		{Name: "strict", URL: srv.URL + "/created", ExpectStatus: []int{200}},
		{Name: "unreachable", URL: "http://" + closedPort(t) + "/"},
		{URL: srv.URL + "/ok"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := &pointtest.Sink{}
	if err := c.Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	defaultName := strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_") + "/ok"
	for _, tc := range []struct {
		name   string
		target string
		up     float64
		status float64 // 0: no status series
	}{
		{"200 is up", "ok", 1, 200},
		{"503 is down with its code", "broken", 0, 503},
		{"201 is down when only 200 is expected", "strict", 0, 201},
		{"refused connection is down without a code", "unreachable", 0, 0},
		{"target named after host and path by default", defaultName, 1, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tags{"target": tc.target}
			pointtest.Check(t, s, []pointtest.Expect{{Metric: "check.http.up", Tags: tg, Value: tc.up}})
			code, ok := s.Lookup("check.http.status_code", tg)
			if tc.status == 0 && ok {
				t.Errorf("unexpected status code %v", code)
			}
			if tc.status != 0 && code != tc.status {
				t.Errorf("status code = %v, %v; want %v", code, ok, tc.status)
			}
			if _, ok := s.Lookup("check.http.latency_ms", tg); ok != (tc.up == 1) {
				t.Errorf("latency present = %v, want %v", ok, tc.up == 1)
			}
		})
	}
}

func TestProcessWatch(t *testing.T) {
	cmd := exec.Command("sleep", "37.123")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c, err := NewProcess(ProcessConfig{Root: "/", Targets: []procwatch.Target{
		{Name: "sleeper", Pattern: `^sleep 37\.123$`},
		{Name: "by-comm", Comm: "sleep"},
		{Name: "absent", Pattern: `^no-such-program-amas$`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c.now = func() time.Time { return t0 }
	first := &pointtest.Sink{}
	if err := c.Collect(context.Background(), first.Emit); err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return t0.Add(10 * time.Second) }
	s := &pointtest.Sink{}
	if err := c.Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	sleeper := tags{"process": "sleeper"}
	pointtest.Check(t, s, []pointtest.Expect{
		{Metric: "process.up", Tags: sleeper, Value: 1},
		{Metric: "process.count", Tags: sleeper, Value: 1},
		{Metric: "process.threads", Tags: sleeper, Value: 1},
		{Metric: "process.cpu.percent", Tags: sleeper, Value: 0},
		{Metric: "process.up", Tags: tags{"process": "absent"}, Value: 0},
		{Metric: "process.count", Tags: tags{"process": "absent"}, Value: 0},
	})
	if n, _ := s.Lookup("process.count", tags{"process": "by-comm"}); n < 1 {
		t.Errorf("comm match found %v sleep processes, want at least 1", n)
	}
	if rss, _ := s.Lookup("process.mem.rss", sleeper); rss <= 0 {
		t.Errorf("rss = %v, want > 0", rss)
	}
	if up, _ := s.Lookup("process.uptime", sleeper); up < 10 || up > 70 {
		t.Errorf("uptime = %v s, want about 10 s (the injected clock is 10 s ahead)", up)
	}
	if first.Has("process.cpu.percent") {
		t.Error("first scan reported CPU percent")
	}
	if _, ok := s.Lookup("process.mem.rss", tags{"process": "absent"}); ok {
		t.Error("absent process has usage series")
	}
}

func TestPingLoopback(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		wantMethod   []string
	}{
		// ICMP works as root or where ping_group_range allows it; auto falls
		// back to TCP elsewhere and says so in the tag.
		{"auto", "auto", []string{"icmp", "tcp"}},
		{"forced tcp", "tcp", []string{"tcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultPingConfig()
			cfg.Targets, cfg.Method, cfg.Count = []string{"127.0.0.1"}, tc.method, 2
			p, err := NewPing(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := &pointtest.Sink{}
			if err := p.Collect(context.Background(), s.Emit); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range tc.wantMethod {
				base := tags{"dest": "127.0.0.1", "method": m}
				loss, ok := s.Lookup("sys.network.lossrate", base)
				if !ok {
					continue
				}
				found = true
				if loss != 0 {
					t.Errorf("loss to loopback = %v, want 0", loss)
				}
				for _, typ := range []string{"min", "avg", "max", "mdev"} {
					if _, ok := s.Lookup("sys.network.rtt", tags{"dest": "127.0.0.1", "method": m, "type": typ}); !ok {
						t.Errorf("missing rtt type=%s", typ)
					}
				}
			}
			if !found {
				t.Errorf("no lossrate with method in %v: %v", tc.wantMethod, s.Index())
			}
		})
	}
}

func TestPingTCPFallbackToClosedPortCountsAsReply(t *testing.T) {
	_, port, err := net.SplitHostPort(closedPort(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultPingConfig()
	cfg.Targets, cfg.Method, cfg.Count = []string{"127.0.0.1"}, "tcp", 1
	cfg.TCPPort, err = strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPing(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &pointtest.Sink{}
	if err := p.Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	pointtest.Check(t, s, []pointtest.Expect{{Metric: "sys.network.lossrate", Tags: tags{"dest": "127.0.0.1", "method": "tcp"}, Value: 0}})
}

func TestPingUnresolvableHostIsAnError(t *testing.T) {
	cfg := DefaultPingConfig()
	cfg.Targets = []string{"no-such-host.invalid"}
	p, err := NewPing(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Collect(context.Background(), (&pointtest.Sink{}).Emit)
	if err == nil || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Errorf("err = %v, want one naming the host", err)
	}
}

func TestConstructorsRejectBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		build  func() error
		option string
	}{
		{"ping without targets", func() error { _, err := NewPing(DefaultPingConfig()); return err }, `"targets"`},
		{"ping bad method", func() error {
			c := DefaultPingConfig()
			c.Targets, c.Method = []string{"x"}, "udp"
			_, err := NewPing(c)
			return err
		}, `"method"`},
		{"ping zero count", func() error {
			c := DefaultPingConfig()
			c.Targets, c.Count = []string{"x"}, 0
			_, err := NewPing(c)
			return err
		}, `"count"`},
		{"tcp address without port", func() error {
			_, err := NewTCP(TCPConfig{Targets: []TCPTarget{{Address: "localhost"}}})
			return err
		}, `"targets"`},
		{"http bad url", func() error {
			_, err := NewHTTP(HTTPConfig{Targets: []HTTPTarget{{URL: "ftp://x"}}})
			return err
		}, `"targets"`},
		{"process with both comm and pattern", func() error {
			_, err := NewProcess(ProcessConfig{Root: "/", Targets: []procwatch.Target{{Name: "x", Comm: "a", Pattern: "b"}}})
			return err
		}, `"targets"`},
		{"process bad pattern", func() error {
			_, err := NewProcess(ProcessConfig{Root: "/", Targets: []procwatch.Target{{Name: "x", Pattern: "("}}})
			return err
		}, `"targets"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.build(); err == nil || !strings.Contains(err.Error(), tc.option) {
				t.Errorf("err = %v, want one naming %s", err, tc.option)
			}
		})
	}
}
