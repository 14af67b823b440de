package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/amas-eye/amas/auth"
)

// wsMessage is a message of either GraphQL websocket protocol.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

// dial opens a websocket to /graphql with subprotocol, and the headers given.
func (f *fixture) dial(ctx context.Context, subprotocol string, headers ...string) (*wsClient, *http.Response, error) {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/graphql"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{subprotocol}, HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	f.t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: f.t, conn: conn}, resp, nil
}

func (c *wsClient) send(ctx context.Context, m wsMessage) {
	c.t.Helper()
	if err := wsjson.Write(ctx, c.conn, m); err != nil {
		c.t.Fatalf("send %s: %v", m.Type, err)
	}
}

// next reads the next message that is not a keep-alive, answering pings.
func (c *wsClient) next(ctx context.Context) (wsMessage, error) {
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, c.conn, &m); err != nil {
			return m, err
		}
		switch m.Type {
		case "ka", "pong":
		case "ping":
			if err := wsjson.Write(ctx, c.conn, wsMessage{Type: "pong"}); err != nil {
				return m, err
			}
		default:
			return m, nil
		}
	}
}

func (c *wsClient) init(ctx context.Context, payload map[string]any) (wsMessage, error) {
	raw, _ := json.Marshal(payload)
	c.send(ctx, wsMessage{Type: "connection_init", Payload: raw})
	return c.next(ctx)
}

func (c *wsClient) subscribe(ctx context.Context, kind, query string, vars map[string]any) {
	raw, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(ctx, wsMessage{ID: "1", Type: kind, Payload: raw})
}

func TestWebsocketInitNeedsCredentials(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name    string
		payload map[string]any
		reason  string
	}{
		{"none", nil, "not signed in"},
		{"unknown token", map[string]any{"Authorization": "Bearer amas_unknown"}, "unknown or revoked"},
		{"not bearer", map[string]any{"authorization": "Basic x"}, "must read"},
		{"not an amas token", map[string]any{"token": "secret"}, "not an Amas API token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := f.dial(ctx, "graphql-transport-ws")
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.init(ctx, tt.payload)
			if err == nil {
				t.Fatalf("init accepted: %+v", m)
			}
			if websocket.CloseStatus(err) != closeForbidden || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("init refused with %v, want close %d naming %q", err, closeForbidden, tt.reason)
			}
		})
	}
}

const liveQuery = `subscription($q: SeriesQuery!) { liveSeries(query: $q) { metric points { t v } } }`

type liveSeriesPayload struct {
	Data struct {
		LiveSeries []struct {
			Metric string
			Points []struct {
				T string
				V float64
			}
		}
	}
	Errors []gqlError
}

func TestLiveSeriesOverWebsocket(t *testing.T) {
	for _, proto := range []struct{ name, subscribe, data string }{
		{"graphql-transport-ws", "subscribe", "next"},
		{"graphql-ws", "start", "data"},
	} {
		t.Run(proto.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now().Truncate(time.Second)
			f.writeSamples("sys.load", "web1", start, 1)

			c, _, err := f.dial(ctx, proto.name)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := c.init(ctx, map[string]any{"Authorization": "Bearer " + f.tokens[auth.RoleViewer]}); err != nil || m.Type != "connection_ack" {
				t.Fatalf("init: %+v, %v", m, err)
			}
			c.subscribe(ctx, proto.subscribe, liveQuery, map[string]any{"q": map[string]any{
				"metric": "sys.load", "step": "1s",
				"from": start.Add(-time.Minute).Format(time.RFC3339), "to": start.Add(time.Second).Format(time.RFC3339),
			}})
			first := readLive(ctx, t, c, proto.data)
			if len(first.Data.LiveSeries) != 1 || len(first.Data.LiveSeries[0].Points) != 1 || first.Data.LiveSeries[0].Points[0].V != 1 {
				t.Fatalf("first message = %+v", first.Data)
			}

			committed := time.Now()
			f.writeSamples("sys.load", "web1", start.Add(2*time.Second), 42)
			update := readLive(ctx, t, c, proto.data)
			t.Logf("update %s after commit", time.Since(committed))
			if time.Since(committed) > 3*time.Second {
				t.Errorf("update took %s", time.Since(committed))
			}
			pts := update.Data.LiveSeries[0].Points
			if pts[len(pts)-1].V != 42 {
				t.Fatalf("update = %+v, want the new point 42 last", update.Data)
			}
		})
	}
}

func readLive(ctx context.Context, t *testing.T, c *wsClient, dataType string) liveSeriesPayload {
	t.Helper()
	m, err := c.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != dataType {
		t.Fatalf("message %s %s, want %s", m.Type, m.Payload, dataType)
	}
	var p liveSeriesPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Errors) > 0 {
		t.Fatalf("errors: %+v", p.Errors)
	}
	return p
}

func TestWebsocketIngestTokenCannotSubscribe(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := f.dial(ctx, "graphql-transport-ws")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.init(ctx, map[string]any{"token": f.tokens[auth.RoleIngest]}); err != nil || m.Type != "connection_ack" {
		t.Fatalf("init: %+v, %v", m, err)
	}
	now := time.Now()
	c.subscribe(ctx, "subscribe", liveQuery, map[string]any{"q": map[string]any{
		"metric": "sys.load", "from": now.Add(-time.Minute).Format(time.RFC3339), "to": now.Format(time.RFC3339),
	}})
	m, err := c.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "next" && m.Type != "error" || !strings.Contains(string(m.Payload), CodeForbidden) {
		t.Fatalf("message %s %s, want a FORBIDDEN error", m.Type, m.Payload)
	}
}

func TestWebsocketSessionCookie(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp := f.post(login, map[string]any{"u": "viewer", "p": testPassword}, "Origin", f.srv.URL)
	cookie := resp.Cookies()[0]
	session := cookie.Name + "=" + cookie.Value

	// Cross-site websocket hijacking: a page elsewhere opens the socket with
	// the victim's cookie.
	if _, resp, err := f.dial(ctx, "graphql-transport-ws", "Cookie", session, "Origin", "https://evil.example"); err == nil {
		t.Fatal("cross-site upgrade accepted")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site upgrade: %v, want 403", err)
	} else if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "cross-site request refused") {
		t.Fatalf("cross-site upgrade refused with %q", body)
	}

	c, _, err := f.dial(ctx, "graphql-transport-ws", "Cookie", session, "Origin", f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.init(ctx, nil); err != nil || m.Type != "connection_ack" {
		t.Fatalf("init with the session cookie: %+v, %v", m, err)
	}
}
