package app_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/config"
	"github.com/amas-eye/amas/store/storetest"
)

// server is one `amas serve` started in-process on a fresh database, with a
// viewer token for GraphQL and the ingest token created at first start.
type server struct {
	*app.App
	url         string // http://host:port
	viewerToken string
	dbURL       string
}

func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	ctx := t.Context()
	db, err := storetest.Create(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	s := startReplica(t, db.URL, extra...)
	if s.Bootstrap == nil || s.Bootstrap.IngestToken == "" {
		t.Fatal("first start created no ingest token")
	}
	return s
}

// startReplica starts an Amas on the database at dbURL, which may have another.
func startReplica(t *testing.T, dbURL string, extra ...string) *server {
	t.Helper()
	ctx := t.Context()
	var cfg config.Server
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Flags(fs)
	args := append([]string{"--database-url", dbURL, "--http-addr", "127.0.0.1:0", "--put-addr", "127.0.0.1:0",
		"--otlp-grpc-addr", "", "--otlp-http-addr", "", "--roles", "api,ingest,rollup"}, extra...)
	if err := config.Parse(fs, args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	svc := auth.NewService(a.Store().Store, auth.Options{}, slog.New(slog.DiscardHandler))
	viewer, err := svc.CreateToken(ctx, "test-viewer-"+strings.ReplaceAll(a.HTTPAddr(), ":", "-"), auth.RoleViewer) // one per replica
	if err != nil {
		t.Fatal(err)
	}
	return &server{App: a, url: "http://" + a.HTTPAddr(), viewerToken: viewer, dbURL: dbURL}
}

// put posts body to /api/put with the ingest token and returns the status and body.
func (s *server) put(t *testing.T, query string, body []byte, gzipped bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/put"+query, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Bootstrap.IngestToken)
	req.Header.Set("Content-Type", "application/json")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// graphql posts a query with token (none when empty) and decodes the answer.
func (s *server) graphql(t *testing.T, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("graphql answer (%s): %v", resp.Status, err)
	}
	return r
}

const seriesQuery = `query($q: SeriesQuery!) { series(query: $q) { metric tags { key value } points { t v } } }`

type seriesAnswer struct {
	Series []struct {
		Metric string
		Tags   []struct{ Key, Value string }
		Points []struct {
			T time.Time
			V float64
		}
	}
}

func (s *server) series(t *testing.T, metric string, from, to time.Time, step string) seriesAnswer {
	t.Helper()
	q := map[string]any{"metric": metric, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}
	if step != "" {
		q["step"] = step
	}
	r := s.graphql(t, s.viewerToken, seriesQuery, map[string]any{"q": q})
	if len(r.Errors) > 0 {
		t.Fatalf("series %s: %+v", metric, r.Errors)
	}
	var a seriesAnswer
	if err := json.Unmarshal(r.Data, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestIngestThenQuery sends points through both protocols, good and bad, and
// reads them back through GraphQL.
func TestIngestThenQuery(t *testing.T) {
	s := startServer(t, "--put-trusted-cidrs", "")
	base := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	ts := func(i int) int64 { return base.Add(time.Duration(i) * 10 * time.Second).Unix() }

	t.Run("http mixed batch stores the good points", func(t *testing.T) {
		body := fmt.Sprintf(`[
			{"metric":"e2e.http","timestamp":%d,"value":1,"tags":{"host":"a"}},
			{"metric":"e2e.http","timestamp":%d,"value":"NaN","tags":{"host":"a"}},
			{"metric":"e2e http","timestamp":%d,"value":3,"tags":{"host":"a"}},
			{"metric":"e2e.http","timestamp":%d,"value":2,"tags":{"host":"a"}}]`, ts(0), ts(1), ts(2), ts(3))
		code, answer := s.put(t, "?details", []byte(body), false)
		if code != http.StatusBadRequest || !strings.Contains(answer, `"success":2`) || !strings.Contains(answer, `"failed":2`) {
			t.Fatalf("mixed batch: %d %s", code, answer)
		}
		code, answer = s.put(t, "", gz(t, []byte(fmt.Sprintf(`{"metric":"e2e.http","timestamp":%d,"value":4,"tags":{"host":"b"}}`, ts(0)))), true)
		if code != http.StatusNoContent {
			t.Fatalf("gzip put: %d %s", code, answer)
		}
		got := s.series(t, "e2e.http", base, base.Add(time.Hour), "10s")
		if len(got.Series) != 2 || len(got.Series[0].Points) != 2 || got.Series[0].Points[1].V != 2 || got.Series[1].Points[0].V != 4 {
			t.Fatalf("series e2e.http: %+v", got)
		}
	})

	t.Run("telnet put needs auth from an untrusted address", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.PutAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		fmt.Fprintf(conn, "put e2e.tcp %d 9 host=a\n", ts(0))
		if line, _ := r.ReadString('\n'); !strings.Contains(line, "auth") {
			t.Fatalf("put before auth answered %q", line)
		}
		fmt.Fprintf(conn, "auth %s\nput e2e.tcp %d 1 host=a\nput e2e.tcp %d x host=a\nput e2e.tcp %d 2 host=a\nversion\n",
			s.Bootstrap.IngestToken, ts(0), ts(1), ts(2))
		if line, _ := r.ReadString('\n'); line != "AUTH_SUCCESS\n" {
			t.Fatalf("auth answered %q", line)
		}
		if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "put: ") {
			t.Fatalf("bad value answered %q", line)
		}
		if line, _ := r.ReadString('\n'); !strings.Contains(line, "amas") {
			t.Fatalf("version answered %q", line)
		}
		var got seriesAnswer
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if got = s.series(t, "e2e.tcp", base, base.Add(time.Hour), "10s"); len(got.Series) == 1 && len(got.Series[0].Points) == 2 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(got.Series) != 1 || len(got.Series[0].Points) != 2 || got.Series[0].Points[0].V != 1 || got.Series[0].Points[1].V != 2 {
			t.Fatalf("series e2e.tcp (the unauthenticated 9 must not be stored): %+v", got)
		}
	})

	t.Run("credentials are required", func(t *testing.T) {
		resp, err := http.Post(s.url+"/api/put", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/api/put without a token: %s, want 401", resp.Status)
		}
		if r := s.graphql(t, "", `{ metrics }`, nil); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
			t.Errorf("GraphQL without credentials: %+v", r)
		}
		if r := s.graphql(t, s.Bootstrap.IngestToken, `{ metrics }`, nil); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
			t.Errorf("GraphQL with an ingest token: %+v", r)
		}
	})

	t.Run("catalogue", func(t *testing.T) {
		r := s.graphql(t, s.viewerToken, `{ metrics(match: "e2e") tagKeys(metric: "e2e.http") tagValues(metric: "e2e.http", key: "host") stats { seriesCount } }`, nil)
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		want := `{"metrics":["e2e.http","e2e.tcp"],"tagKeys":["host"],"tagValues":["a","b"],"stats":{"seriesCount":3}}`
		if string(r.Data) != want {
			t.Errorf("got %s, want %s", r.Data, want)
		}
	})
}

// TestLiveSeriesOverWebsocket subscribes with a real websocket client and
// receives a point sent through /api/put after the subscription started.
func TestLiveSeriesOverWebsocket(t *testing.T) {
	s := startServer(t)
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	wsURL := "ws" + strings.TrimPrefix(s.url, "http") + "/graphql"

	t.Run("connection_init without credentials is refused", func(t *testing.T) {
		c, _, err := dialer.Dial(wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{}})
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var msg map[string]any
		if err := c.ReadJSON(&msg); err == nil && msg["type"] == "connection_ack" {
			t.Fatal("connection acknowledged without credentials")
		}
	})

	c, _, err := dialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() map[string]any {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var msg map[string]any
			if err := c.ReadJSON(&msg); err != nil {
				t.Fatal(err)
			}
			if msg["type"] != "ping" && msg["type"] != "ka" {
				return msg
			}
		}
	}
	_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + s.viewerToken}})
	if msg := read(); msg["type"] != "connection_ack" {
		t.Fatalf("connection_init answered %v", msg)
	}
	now := time.Now().UTC().Truncate(time.Second)
	q := map[string]any{"metric": "e2e.live", "from": now.Add(-time.Minute).Format(time.RFC3339),
		"to": now.Add(time.Minute).Format(time.RFC3339), "step": "1s"}
	_ = c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query":     `subscription($q: SeriesQuery!) { liveSeries(query: $q) { tags { key value } points { t v } } }`,
		"variables": map[string]any{"q": q},
	}})
	first := read()
	if first["type"] != "next" {
		t.Fatalf("first message %v", first)
	}
	sent := time.Now()
	if code, body := s.put(t, "", []byte(fmt.Sprintf(`{"metric":"e2e.live","timestamp":%d,"value":42,"tags":{"host":"a"}}`, now.Unix())), false); code != http.StatusNoContent {
		t.Fatalf("put: %d %s", code, body)
	}
	for {
		msg := read()
		if msg["type"] != "next" {
			t.Fatalf("message %v", msg)
		}
		if b, _ := json.Marshal(msg["payload"]); strings.Contains(string(b), `"v":42`) {
			if d := time.Since(sent); d > 2*time.Second {
				t.Errorf("the point arrived %s after its commit, want within 1s", d)
			}
			return
		}
	}
}

// TestStopFlushesAcceptedPoints stops the server right after a telnet client's
// points were accepted (queued, not yet committed) and finds all of them stored.
func TestStopFlushesAcceptedPoints(t *testing.T) {
	s := startServer(t)
	conn, err := net.Dial("tcp", s.PutAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 50_000
	start := time.Now().Add(-time.Hour).Unix()
	w := bufio.NewWriter(conn)
	for i := range n {
		fmt.Fprintf(w, "put e2e.flush %d %d host=h%d\n", start+int64(i/100), i, i%100)
	}
	// The answer to version comes after every earlier line was handled, so every
	// point has been accepted when it arrives.
	fmt.Fprintln(w, "version")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "amas") {
		t.Fatalf("version answered %q, %v", line, err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := pgxConnect(t, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := st.QueryRow(t.Context(), `SELECT count(*) FROM samples`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != n {
		t.Fatalf("%d of %d accepted points stored after Stop", stored, n)
	}
}

func pgxConnect(t *testing.T, url string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(t.Context(), url)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}
