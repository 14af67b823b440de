package pglisten_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/amas-eye/amas/internal/pglisten"
	"github.com/amas-eye/amas/internal/pgproxy"
	"github.com/amas-eye/amas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunServesReconnectsAndStops cuts the LISTEN connection under a Listener and
// checks that it reconnects (serve runs again, LISTENing again), that connect
// failures are retried, that notifications reach serve, and that Run returns nil
// once ctx ends.
func TestRunServesReconnectsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u, err := url.Parse(storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := pgproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	u.Host = proxy.Addr()
	viaProxy := u.String()

	failures := make(chan struct{}, 100)
	connect := func(ctx context.Context) (*pgx.Conn, error) {
		conn, err := pgx.Connect(ctx, viaProxy)
		if err != nil {
			failures <- struct{}{}
		}
		return conn, err
	}
	channel := fmt.Sprintf("pglisten_test_%d", time.Now().UnixNano())
	l := pglisten.New(connect, channel, time.Millisecond, 20*time.Millisecond, slog.New(slog.DiscardHandler))

	sessions := make(chan struct{}, 10)
	payloads := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			sessions <- struct{}{}
			return pglisten.Each(ctx, conn, func(p string) { payloads <- p })
		})
	}()

	notify, err := pgx.Connect(ctx, storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close(context.Background())
	send := func(payload string) {
		t.Helper()
		if _, err := notify.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(want string) {
		t.Helper()
		select {
		case got := <-payloads:
			if got != want {
				t.Fatalf("payload = %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("payload %q never arrived", want)
		}
	}

	<-sessions
	waitFor(t, "listening", l.Listening)
	send("one")
	receive("one")

	proxy.Cut()
	waitFor(t, "listening to stop", func() bool { return !l.Listening() })
	<-failures // reconnecting while the proxy refuses
	<-failures
	proxy.Restore()
	<-sessions
	waitFor(t, "listening again", l.Listening)
	send("two")
	receive("two")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil once ctx ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if l.Listening() {
		t.Fatal("still listening after Run returned")
	}
}

// TestEachWrapsWaitError checks that Each stops with the wait's error, wrapped.
func TestEachWrapsWaitError(t *testing.T) {
	conn, err := pgx.Connect(context.Background(), storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = pglisten.Each(ctx, conn, func(p string) { t.Errorf("unexpected payload %q", p) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Each = %v, want a wrapped deadline error", err)
	}
}
