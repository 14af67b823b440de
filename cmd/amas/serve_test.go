package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amas-eye/amas/store/storetest"
)

// syncBuffer is a bytes.Buffer that serve may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeBanner starts `amas serve` on a fresh database and checks that it
// tells the operator every address and, on this first start, the credentials.
func TestServeBanner(t *testing.T) {
	db, err := storetest.Create(t.Context(), "serve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--database-url", db.URL, "--log-level", "error",
			"--http-addr", "127.0.0.1:0", "--put-addr", "127.0.0.1:0",
			"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"}, &out, &errOut)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "ingest token:") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, errOut.String())
	}
	banner := out.String()
	for _, want := range []string{
		"web app and GraphQL:  http://127.0.0.1:", "/graphql", "/graphiql",
		"OpenTSDB HTTP put:    http://127.0.0.1:", "OpenTSDB telnet put:  127.0.0.1:",
		"OTLP gRPC:            127.0.0.1:", "OTLP HTTP:            http://127.0.0.1:", "/v1/traces",
		"admin user:    admin", "password:", "ingest token:  amas_",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
}
