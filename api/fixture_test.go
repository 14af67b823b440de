package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/live"
	"github.com/amas-eye/amas/resolvers"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

const testPassword = "correct horse battery"

// fixture is an API server on a fresh database, with one user and one API
// token per role.
type fixture struct {
	t      *testing.T
	st     *store.Store
	auth   *auth.Service
	srv    *httptest.Server
	tokens map[auth.Role]string
}

// newFixture starts the server; tune, when not nil, adjusts its Config.
func newFixture(t *testing.T, tune func(*Config)) *fixture {
	t.Helper()
	st, _ := storetest.Migrated(t)
	log := slog.New(slog.DiscardHandler)
	svc := auth.NewService(st, auth.Options{}, log)
	ctx, cancel := context.WithCancel(context.Background())
	hub := live.New(live.PoolConnector(st.Pool()), st, log, live.Options{Coalesce: 50 * time.Millisecond})
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		_ = hub.Run(ctx)
	}()
	cfg := Config{
		Resolvers: resolvers.Config{
			Series: st, Names: st, Catalog: st, Stats: st, Live: hub, Agents: st, Overview: st,
		},
		Auth:         svc,
		QueryTimeout: 10 * time.Second,
		Log:          log,
	}
	if tune != nil {
		tune(&cfg)
	}
	srv := httptest.NewServer(NewHandler(cfg))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-hubDone
	})
	f := &fixture{t: t, st: st, auth: svc, srv: srv, tokens: map[auth.Role]string{}}
	for _, role := range []auth.Role{auth.RoleIngest, auth.RoleViewer, auth.RoleEditor, auth.RoleAdmin} {
		if role != auth.RoleIngest {
			if err := svc.CreateUser(ctx, string(role), testPassword, role); err != nil {
				t.Fatal(err)
			}
		}
		token, err := svc.CreateToken(ctx, "test-"+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[role] = token
	}
	return f
}

// gqlResponse is a GraphQL reply.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// post sends query as a JSON POST; headers are added to the request.
func (f *fixture) post(query string, vars map[string]any, headers ...string) (gqlResponse, *http.Response) {
	f.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		f.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		f.t.Fatalf("decode reply (status %d): %v", resp.StatusCode, err)
	}
	return out, resp
}

// postAs sends query with the API token of role.
func (f *fixture) postAs(role auth.Role, query string, vars map[string]any) gqlResponse {
	f.t.Helper()
	out, _ := f.post(query, vars, "Authorization", "Bearer "+f.tokens[role])
	return out
}

// writeSamples stores one point per value of metric{host=h}, one second apart
// ending at end, and announces them as the ingest pipeline does.
func (f *fixture) writeSamples(metric, host string, end time.Time, values ...float64) {
	f.t.Helper()
	ctx := context.Background()
	ids, err := f.st.ResolveSeries(ctx, []store.SeriesRef{{Metric: metric, Tags: map[string]string{"host": host}}})
	if err != nil {
		f.t.Fatal(err)
	}
	samples := make([]store.Sample, len(values))
	for i, v := range values {
		samples[i] = store.Sample{SeriesID: ids[0], Time: end.Add(time.Duration(i-len(values)+1) * time.Second), Value: v}
	}
	if err := f.st.WriteSamples(ctx, samples, metric); err != nil {
		f.t.Fatal(err)
	}
}

func decode[T any](t *testing.T, r gqlResponse) T {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	var v T
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
	return v
}
