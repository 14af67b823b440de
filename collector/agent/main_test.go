package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/amas-eye/amas/collector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// fakeServer stands in for amas serve: it decodes each /api/put body (checking
// gzip and the token) and answers with the next scripted reply.
type fakeServer struct {
	*httptest.Server
	t *testing.T

	mu        sync.Mutex
	replies   []reply // consumed one per request; then 204
	batches   [][]putPoint
	requests  int
	lastHB    map[string]any // the last heartbeat received
	delivered chan struct{}  // one per stored batch, while it has room
	down      atomic.Bool    // while set, every request gets 503
}

type reply struct {
	status     int
	body       string
	retryAfter string
}

func newFakeServer(t *testing.T, replies ...reply) *fakeServer {
	f := &fakeServer{t: t, replies: replies, delivered: make(chan struct{}, 1000)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/put", f.put)
	mux.HandleFunc("POST "+HeartbeatPath, f.heartbeat)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) put(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer secret" || r.Header.Get("Content-Encoding") != "gzip" || !r.URL.Query().Has("details") {
		f.t.Errorf("put request: auth %q, encoding %q, query %q", r.Header.Get("Authorization"), r.Header.Get("Content-Encoding"), r.URL.RawQuery)
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		f.t.Errorf("body is not gzip: %v", err)
		return
	}
	var batch []putPoint
	if err := json.NewDecoder(zr).Decode(&batch); err != nil {
		f.t.Errorf("body is not a JSON array of points: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	rep := reply{status: http.StatusNoContent}
	if f.down.Load() {
		rep = reply{status: http.StatusServiceUnavailable}
	} else if len(f.replies) > 0 {
		rep, f.replies = f.replies[0], f.replies[1:]
	}
	if rep.status < 300 {
		f.batches = append(f.batches, batch)
		select {
		case f.delivered <- struct{}{}:
		default:
		}
	}
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (f *fakeServer) heartbeat(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var hb map[string]any
	if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
		f.t.Errorf("heartbeat body: %v", err)
	}
	f.mu.Lock()
	f.lastHB = hb
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeServer) lastHeartbeat() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastHB
}

// stored is every point the server accepted, in arrival order.
func (f *fakeServer) stored() []putPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []putPoint
	for _, b := range f.batches {
		out = append(out, b...)
	}
	return out
}

func (f *fakeServer) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// points makes n points test.seq with values 0..n-1 (plus offset).
func points(offset, n int) []collector.Point {
	out := make([]collector.Point, n)
	for i := range out {
		out[i] = collector.Point{Metric: "test.seq", Time: time.Unix(1700000000+int64(offset+i), 0), Value: float64(offset + i), Tags: map[string]string{"host": "h1"}}
	}
	return out
}

// spoolBatch appends points as one batch.
func spoolBatch(t *testing.T, s *Spool, ps []collector.Point) {
	t.Helper()
	body, err := EncodeBatch(ps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(body, len(ps)); err != nil {
		t.Fatal(err)
	}
}

func decodeBatch(payload []byte) ([]putPoint, error) {
	zr, err := gzip.NewReader(bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	var ps []putPoint
	return ps, json.NewDecoder(zr).Decode(&ps)
}

func values(ps []putPoint) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.Value
	}
	return out
}
