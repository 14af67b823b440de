package opentsdb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/ingest"
)

// countingWriter is a pipeline that takes everything at once, so that the
// benchmarks measure the protocol alone.
type countingWriter struct{ points atomic.Int64 }

func (w *countingWriter) Write(_ context.Context, pts []ingest.Point) error {
	w.points.Add(int64(len(pts)))
	return nil
}

func (w *countingWriter) Enqueue(_ context.Context, pts []ingest.Point) error {
	w.points.Add(int64(len(pts)))
	return nil
}

// benchBody is an /api/put body of n points shaped as agents send them.
func benchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":"sys.cpu.user","timestamp":%d,"value":%d.5,"tags":{"host":"web%04d","dc":"eu1"}}`, 1356998400+i/100, i%100, i%100)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func reportPoints(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N)*float64(perOp)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkDecodeJSON(b *testing.B) {
	body := benchBody(1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		pts, errs, err := decodeJSONBody(body, ingest.DefaultLimits, nil)
		if err != nil || len(errs) > 0 || len(pts) != 1000 {
			b.Fatal(err, errs)
		}
	}
	reportPoints(b, 1000)
}

func BenchmarkParsePutLine(b *testing.B) {
	line := "put sys.cpu.user 1356998400 42.5 host=web0001 dc=eu1"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePutLine(line, ingest.DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
	reportPoints(b, 1)
}

// BenchmarkHTTPPut posts 1,000-point bodies to the handler in-process.
func BenchmarkHTTPPut(b *testing.B) {
	body := benchBody(1000)
	h := NewHTTPHandler(&countingWriter{}, ingest.DefaultLimits, 32<<20, slog.New(slog.DiscardHandler))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/put", bytes.NewReader(body)))
		if rec.Code != http.StatusNoContent {
			b.Fatal(rec.Code, rec.Body)
		}
	}
	reportPoints(b, 1000)
}

// BenchmarkTCPPut streams put lines over one loopback connection; each
// operation is 10,000 lines followed by a version command as a barrier.
func BenchmarkTCPPut(b *testing.B) {
	const lines = 10_000
	var burst bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&burst, "put sys.cpu.user %d %d.5 host=web%04d dc=eu1\n", 1356998400+i/100, i%100, i%100)
	}
	burst.WriteString("version\n")
	w := &countingWriter{}
	srv := NewTCPServer(TCPConfig{
		TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		MaxLineBytes: 4096, Limits: ingest.DefaultLimits, Version: "amas bench",
	}, w, func(context.Context, string) (auth.Principal, error) { return auth.Principal{}, nil },
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	b.SetBytes(int64(burst.Len()))
	for b.Loop() {
		if _, err := conn.Write(burst.Bytes()); err != nil {
			b.Fatal(err)
		}
		if l, err := r.ReadString('\n'); err != nil || l != "amas bench\n" {
			b.Fatalf("version answered %q, %v", l, err)
		}
	}
	reportPoints(b, lines)
	if got := w.points.Load(); got < int64(b.N)*lines {
		b.Fatalf("%d points queued, want %d", got, int64(b.N)*lines)
	}
}
