package agent

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// newTestShipper ships dir's spool to srv; its waits are recorded, not slept.
func newTestShipper(t *testing.T, srv *fakeServer, s *Spool) (*Shipper, *[]time.Duration) {
	t.Helper()
	var target atomic.Pointer[Target]
	target.Store(&Target{Server: srv.URL, Token: "secret"})
	sh := NewShipper(s, &target, 5*time.Second, time.Minute, "test", testLog(t))
	var waits []time.Duration
	sh.wait = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return sh, &waits
}

func TestShipper(t *testing.T) {
	details := `{"success":8,"failed":2,"errors":[{"datapoint":{"metric":"test.seq"},"error":"Invalid value"},{"datapoint":{"metric":"test.seq"},"error":"Too many tags"}]}`
	for _, tc := range []struct {
		name      string
		replies   []reply
		batches   int
		wantStore []float64
		wantReqs  int
		rejected  int64
	}{
		{name: "all delivered in order", batches: 3, wantStore: seq(0, 30), wantReqs: 3},
		{name: "503 then 204: the spooled batches are replayed in order",
			replies: []reply{{status: 503}, {status: 503}}, batches: 3, wantStore: seq(0, 30), wantReqs: 5},
		{name: "429 is retried",
			replies: []reply{{status: 429, retryAfter: "7"}}, batches: 1, wantStore: seq(0, 10), wantReqs: 2},
		{name: "400 with details is logged, counted and not retried",
			replies: []reply{{status: 400, body: details}}, batches: 2, wantStore: seq(10, 20), wantReqs: 2, rejected: 2},
		{name: "400 without details drops the whole batch",
			replies: []reply{{status: 400, body: `{"error":{"code":400,"message":"not JSON"}}`}}, batches: 1, wantReqs: 1, rejected: 10},
		{name: "401 is retried: the token may be fixed by a reload",
			replies: []reply{{status: 401}}, batches: 1, wantStore: seq(0, 10), wantReqs: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, tc.replies...)
			s := openSpool(t, t.TempDir(), 1<<20)
			for i := range tc.batches {
				spoolBatch(t, s, points(i*10, 10))
			}
			sh, _ := newTestShipper(t, srv, s)
			for sh.Drain(context.Background()) != nil {
				_ = sh.wait(context.Background(), time.Second) // as Run would
			}
			if got := values(srv.stored()); !slices.Equal(got, tc.wantStore) {
				t.Errorf("stored %v, want %v", got, tc.wantStore)
			}
			if srv.requestCount() != tc.wantReqs {
				t.Errorf("%d requests, want %d", srv.requestCount(), tc.wantReqs)
			}
			if sh.Rejected() != tc.rejected {
				t.Errorf("rejected %d, want %d", sh.Rejected(), tc.rejected)
			}
			if s.Bytes() != 0 {
				t.Errorf("spool holds %d bytes after a full drain", s.Bytes())
			}
		})
	}
}

// TestShipperRunRetriesWithBackoff drives Run: two 503s, then success; the
// recorded back-off grows and honours Retry-After.
func TestShipperRunRetriesWithBackoff(t *testing.T) {
	srv := newFakeServer(t, reply{status: 503}, reply{status: 503}, reply{status: 503, retryAfter: "30"})
	s := openSpool(t, t.TempDir(), 1<<20)
	spoolBatch(t, s, points(0, 10))
	sh, waits := newTestShipper(t, srv, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sh.Run(ctx) }()
	<-srv.delivered
	cancel()
	<-done
	w := *waits // a fourth wait may follow the cancel
	if len(w) < 3 || w[0] > time.Second || w[1] < time.Second || w[1] > 2*time.Second || w[2] != 30*time.Second {
		t.Fatalf("waits %v: want ~0.5-1s, ~1-2s, then Retry-After 30s", w)
	}
}

// TestSpoolSurvivesRestart: batches spooled while the server is down are
// shipped by a new agent process (a new Spool on the same directory).
func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	down := newFakeServer(t, reply{status: 503})
	s := openSpool(t, dir, 1<<20)
	for i := range 3 {
		spoolBatch(t, s, points(i*10, 10))
	}
	sh, _ := newTestShipper(t, down, s)
	if err := sh.Drain(context.Background()); err == nil {
		t.Fatal("Drain succeeded against a server answering 503")
	}
	s.Close()

	up := newFakeServer(t)
	s2 := openSpool(t, dir, 1<<20)
	sh2, _ := newTestShipper(t, up, s2)
	if err := sh2.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := values(up.stored()); !slices.Equal(got, seq(0, 30)) {
		t.Fatalf("after restart the server got %v", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"5", 5 * time.Second}, {"junk", 0}, {"-3", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"999999", maxRetryAfter},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
