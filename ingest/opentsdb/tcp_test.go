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
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/ingest"
)

// startTCP serves on 127.0.0.1; trusted says whether loopback needs no auth.
// The server stops at the end of the test.
func startTCP(t *testing.T, w *fakeWriter, trusted bool) string {
	t.Helper()
	addr, stop := startTCPServer(t, w, trusted)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr
}

// startTCPServer is startTCP whose stop the test calls: it cancels Serve's
// context and returns what Serve returned.
func startTCPServer(t *testing.T, w *fakeWriter, trusted bool) (addr string, stop func() error) {
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
	var once sync.Once
	var serveErr error
	return ln.Addr().String(), func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
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

// skipTo reads replies up to the line want, which tells that everything sent
// before the command answering it was handled.
func (c *client) skipTo(want string) {
	c.t.Helper()
	for c.line() != want {
	}
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
	waitFor(t, func() bool { return w.enqueueCalls() >= 1 })
	time.Sleep(200 * time.Millisecond) // time to read ahead, if the server did
	if calls := w.enqueueCalls(); calls != 1 || len(w.stored()) != 0 {
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

func TestTCPLineEndings(t *testing.T) {
	w := &fakeWriter{}
	c := dial(t, startTCP(t, w, true))
	c.send("put m 1356998400 1 host=a\r", "put\tm\t1356998400\t2\thost=a", "version\r")
	if got := c.line(); got != "amas test" {
		t.Fatalf("got %q", got)
	}
	if got := w.stored(); len(got) != 2 || got[0].Tags["host"] != "a" || got[1].Value != 2 {
		t.Errorf("stored %+v, want both points with clean tags", got)
	}
}

// TestTCPConcurrentConnections sends from many clients at once; every point
// arrives, in order within its connection.
func TestTCPConcurrentConnections(t *testing.T) {
	w := &fakeWriter{}
	addr := startTCP(t, w, true)
	const conns, perConn = 32, 500
	var wg sync.WaitGroup
	for i := range conns {
		c := dial(t, addr)
		wg.Go(func() {
			bw := bufio.NewWriter(c.conn)
			for j := range perConn {
				fmt.Fprintf(bw, "put m %d %d conn=c%d\n", 1356998400+j, j, i)
			}
			fmt.Fprintln(bw, "version")
			if err := bw.Flush(); err != nil {
				t.Error(err)
				return
			}
			if l, err := c.r.ReadString('\n'); err != nil || l != "amas test\n" {
				t.Errorf("connection %d: version answered %q, %v", i, l, err)
			}
		})
	}
	wg.Wait()
	next := map[string]float64{}
	for _, p := range w.stored() {
		conn := p.Tags["conn"]
		if p.Value != next[conn] {
			t.Fatalf("connection %s: value %v, want %v", conn, p.Value, next[conn])
		}
		next[conn]++
	}
	if len(next) != conns {
		t.Fatalf("points from %d connections, want %d", len(next), conns)
	}
}

// TestTCPShutdownQueuesWhatWasRead stops the server while the pipeline is
// full: Serve waits, the points already read are queued once there is room,
// and the idle connection is closed.
func TestTCPShutdownQueuesWhatWasRead(t *testing.T) {
	w := &fakeWriter{block: make(chan struct{})}
	addr, stop := startTCPServer(t, w, true)
	busy, idle := dial(t, addr), dial(t, addr)
	busy.send("put m 1356998400 1 host=a", "put m 1356998401 2 host=a")
	waitFor(t, func() bool { return w.enqueueCalls() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned %v while a batch waited for room", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(w.block)
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if got := w.stored(); len(got) != 2 {
		t.Errorf("stored %d points, want the 2 read before the stop", len(got))
	}
	_ = idle.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.r.ReadString('\n'); err == nil {
		t.Error("idle connection still open after the stop")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

// TestTCPBackPressureBlocksClient holds the pipeline and keeps writing: once
// the socket buffers are full the client's writes stall, since the server
// stops reading instead of buffering without bound.
func TestTCPBackPressureBlocksClient(t *testing.T) {
	w := &fakeWriter{block: make(chan struct{})}
	c := dial(t, startTCP(t, w, true))
	t.Cleanup(func() { close(w.block) }) // runs before the server stops
	chunk := []byte(strings.Repeat("put m 1356998400 1 host=a\n", 2500))
	const limit = 64 << 20
	written := 0
	for written < limit {
		_ = c.conn.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.conn.Write(chunk)
		written += n
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if written >= limit {
		t.Fatalf("wrote %d bytes while the pipeline was full: the server reads ahead without bound", written)
	}
	t.Logf("client blocked after %d bytes", written)
}
