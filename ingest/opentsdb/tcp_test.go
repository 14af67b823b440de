package opentsdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/ingest"
)

// startTCP serves on 127.0.0.1; trusted says whether loopback needs no auth.
func startTCP(t *testing.T, w *fakeWriter, trusted bool) string {
	t.Helper()
	cfg := TCPConfig{MaxLineBytes: 128, Limits: ingest.DefaultLimits, Version: "amas test"}
	if trusted {
		cfg.TrustedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	authn := func(_ context.Context, token string) (auth.Principal, error) {
		switch token {
		case "writer":
			return auth.Principal{TokenName: "writer", Role: auth.RoleIngest}, nil
		case "reader":
			return auth.Principal{TokenName: "reader", Role: auth.RoleViewer}, nil
		}
		return auth.Principal{}, errors.New("unknown API token")
	}
	srv := NewTCPServer(cfg, w, authn, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) send(lines ...string) {
	if _, err := fmt.Fprint(c.conn, strings.Join(lines, "\n")+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(l, "\n")
}

func TestTCPPutFromTrustedNetwork(t *testing.T) {
	w := &fakeWriter{}
	c := dial(t, startTCP(t, w, true))
	c.send("put m 1356998400 1 host=a",
		"put m 1356998400 x host=a",
		"", "  put m 1356998401 2 host=a",
		"put m 1356998402 3 host=a "+strings.Repeat("x", 200),
		"stats", "help", "version")
	for _, want := range []string{
		"put: illegal argument: invalid value: x",
		"put: illegal argument: line too long: more than 128 bytes (--ingest-max-line-bytes)",
		"unknown command: stats.  Try `help'.",
		"available commands: auth exit help put version",
		"amas test",
	} {
		if got := c.line(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if got := w.stored(); len(got) != 2 || got[0].Value != 1 || got[1].Value != 2 {
		t.Errorf("stored %+v, want the two good points", got)
	}
	c.send("exit")
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("connection still open after exit")
	}
}

func TestTCPAuth(t *testing.T) {
	w := &fakeWriter{}
	c := dial(t, startTCP(t, w, false))
	c.send("put m 1356998400 1 host=a", "auth nope", "auth reader", "put m 1356998400 2 host=a",
		"auth writer", "put m 1356998400 3 host=a", "version")
	for _, want := range []string{
		`put: authentication required: send "auth <token>" first (a token whose role can write)`,
		"AUTH_FAIL: unknown API token",
		`AUTH_FAIL: token "reader" has role viewer, which cannot write data`,
		`put: authentication required: send "auth <token>" first (a token whose role can write)`,
		"AUTH_SUCCESS",
		"amas test",
	} {
		if got := c.line(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if got := w.stored(); len(got) != 1 || got[0].Value != 3 {
		t.Errorf("stored %+v, want only the point sent after auth writer", got)
	}
}

// TestTCPBackPressure holds the pipeline: the connection hands over one batch
// and stops processing lines until there is room, then everything arrives.
func TestTCPBackPressure(t *testing.T) {
	w := &fakeWriter{block: make(chan struct{})}
	c := dial(t, startTCP(t, w, true))
	const n = 5000
	go func() {
		bw := bufio.NewWriter(c.conn)
		for i := range n {
			fmt.Fprintf(bw, "put m %d %d host=a\n", 1356998400+i, i)
		}
		fmt.Fprintln(bw, "version")
		_ = bw.Flush()
	}()
	time.Sleep(200 * time.Millisecond)
	w.mu.Lock()
	calls := w.calls
	w.mu.Unlock()
	if calls != 1 || len(w.stored()) != 0 {
		t.Fatalf("while the queue is full: %d Enqueue calls and %d points, want 1 blocked call", calls, len(w.stored()))
	}
	close(w.block)
	if got := c.line(); got != "amas test" {
		t.Fatalf("got %q", got)
	}
	got := w.stored()
	if len(got) != n {
		t.Fatalf("%d points stored, want %d", len(got), n)
	}
	for i, p := range got {
		if p.Value != float64(i) {
			t.Fatalf("point %d has value %v: order lost", i, p.Value)
		}
	}
}
