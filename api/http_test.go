package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/store"
)

const updateMeta = `mutation { updateMetricMeta(metric: "sys.cpu.user", unit: "percent") { name unit } }`

func TestAccessByRole(t *testing.T) {
	f := newFixture(t, nil)
	f.writeSamples("sys.cpu.user", "web1", time.Now(), 1)
	tests := []struct {
		name    string
		headers []string
		query   string
		want    string // error code; empty: success
	}{
		{"no credentials", nil, `{ metrics }`, CodeUnauthenticated},
		{"unknown token", []string{"Authorization", "Bearer amas_unknown"}, `{ metrics }`, CodeUnauthenticated},
		{"not a bearer token", []string{"Authorization", "Basic dXNlcjpwYXNz"}, `{ metrics }`, CodeUnauthenticated},
		{"ingest token reads", []string{"Authorization", "Bearer " + f.tokens[auth.RoleIngest]}, `{ metrics }`, CodeForbidden},
		{"viewer reads", []string{"Authorization", "Bearer " + f.tokens[auth.RoleViewer]}, `{ metrics }`, ""},
		{"viewer edits", []string{"Authorization", "Bearer " + f.tokens[auth.RoleViewer]}, updateMeta, CodeForbidden},
		{"editor edits", []string{"Authorization", "Bearer " + f.tokens[auth.RoleEditor]}, updateMeta, ""},
		{"admin edits", []string{"Authorization", "Bearer " + f.tokens[auth.RoleAdmin]}, updateMeta, ""},
		{"introspection without credentials", nil, `{ __schema { queryType { name } } }`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := f.post(tt.query, nil, tt.headers...)
			if got.code() != tt.want {
				t.Fatalf("code = %q, want %q (errors %+v)", got.code(), tt.want, got.Errors)
			}
			if tt.want == "" && len(got.Data) == 0 {
				t.Fatal("no data")
			}
		})
	}
}

func TestForbiddenMessageNamesTheRole(t *testing.T) {
	f := newFixture(t, nil)
	got := f.postAs(auth.RoleViewer, updateMeta, nil)
	if got.code() != CodeForbidden || !strings.Contains(got.Errors[0].Message, "updateMetricMeta needs the editor role or higher, and you are viewer") {
		t.Fatalf("errors = %+v", got.Errors)
	}
}

func TestMeWithToken(t *testing.T) {
	f := newFixture(t, nil)
	got := decode[struct {
		Me struct {
			Username string
			Role     string
			APIToken bool
		}
	}](t, f.postAs(auth.RoleViewer, `{ me { username role apiToken } }`, nil))
	if got.Me.Username != "test-viewer" || got.Me.Role != "VIEWER" || !got.Me.APIToken {
		t.Fatalf("me = %+v", got.Me)
	}
}

const login = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { username role apiToken } }`

func TestCookieSession(t *testing.T) {
	f := newFixture(t, nil)
	origin := []string{"Origin", f.srv.URL}

	wrong, _ := f.post(login, map[string]any{"u": "viewer", "p": "not the password"}, origin...)
	if wrong.code() != CodeUnauthenticated || wrong.Errors[0].Message != auth.ErrBadCredentials.Error() {
		t.Fatalf("wrong password: %+v", wrong.Errors)
	}
	crossSite, resp := f.post(login, map[string]any{"u": "viewer", "p": testPassword}, "Origin", "https://evil.example")
	if crossSite.code() != CodeForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-site login: %+v, cookies %v", crossSite.Errors, resp.Cookies())
	}

	out, resp := f.post(login, map[string]any{"u": "viewer", "p": testPassword}, origin...)
	if user := decode[struct{ Login struct{ Username string } }](t, out); user.Login.Username != "viewer" {
		t.Fatalf("login = %+v", user)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].Value == "" {
		t.Fatalf("login cookies = %+v, want one HttpOnly session cookie", cookies)
	}
	session := []string{"Cookie", cookies[0].Name + "=" + cookies[0].Value}

	me, _ := f.post(`{ me { username apiToken } }`, nil, append(session, origin...)...)
	got := decode[struct {
		Me struct {
			Username string
			APIToken bool
		}
	}](t, me)
	if got.Me.Username != "viewer" || got.Me.APIToken {
		t.Fatalf("me = %+v", got.Me)
	}

	// A page on another site cannot use the cookie (CSRF).
	forged, _ := f.post(`{ me { username } }`, nil, append(session, "Origin", "https://evil.example")...)
	if forged.code() != CodeForbidden || !strings.Contains(forged.Errors[0].Message, "cross-site") {
		t.Fatalf("cross-site cookie request: %+v", forged.Errors)
	}

	out, resp = f.post(`mutation { logout }`, nil, append(session, origin...)...)
	if decode[struct{ Logout bool }](t, out).Logout != true {
		t.Fatal("logout = false")
	}
	if c := resp.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Fatalf("logout cookies = %+v, want the session cookie cleared", c)
	}
	after, _ := f.post(`{ me { username } }`, nil, append(session, origin...)...)
	if after.code() != CodeUnauthenticated {
		t.Fatalf("after logout: %+v", after.Errors)
	}
}

func TestCookiePostMustBeJSON(t *testing.T) {
	f := newFixture(t, nil)
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/graphql", strings.NewReader(`query={me{username}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a form-encoded POST was answered")
	}
}

func TestGetRunsQueriesOnly(t *testing.T) {
	f := newFixture(t, nil)
	f.writeSamples("sys.cpu.user", "web1", time.Now(), 1)
	get := func(query string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/graphql?query="+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens[auth.RoleAdmin])
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("{metrics}"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET query: status %d", resp.StatusCode)
	}
	if resp := get(`mutation{logout}`); resp.StatusCode == http.StatusOK {
		t.Fatal("GET ran a mutation")
	}
}

func TestComplexityLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxComplexity = 150 })
	one := `s%d: series(query: {metric: "m", from: "2024-01-01T00:00:00Z", to: "2024-01-01T01:00:00Z"}) { metric tags { key value } points { t v } info { unit } }`
	q := "{" + strings.ReplaceAll(one, "%d", "1") + "}"
	if got := f.postAs(auth.RoleViewer, q, nil); len(got.Errors) > 0 {
		t.Fatalf("one series query: %+v", got.Errors)
	}
	q = "{" + strings.ReplaceAll(one, "%d", "1") + " " + strings.ReplaceAll(one, "%d", "2") + "}"
	got := f.postAs(auth.RoleViewer, q, nil)
	if got.code() != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(got.Errors[0].Message, "exceeds the limit of 150") {
		t.Fatalf("two series queries: %+v", got.Errors)
	}
}

func TestQueryTimeout(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.QueryTimeout = time.Nanosecond })
	got := f.postAs(auth.RoleViewer, `{ metrics }`, nil)
	if got.code() != CodeTimeout || !strings.Contains(got.Errors[0].Message, "ran longer than the limit of 1ns") {
		t.Fatalf("errors = %+v", got.Errors)
	}
}

func TestPointLimitCoversTheWholeResponse(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Resolvers.MaxPoints = 5 })
	end := time.Now().Truncate(time.Second)
	f.writeSamples("sys.cpu.user", "web1", end, 1, 2, 3)
	vars := map[string]any{"q": map[string]any{
		"metric": "sys.cpu.user", "step": "1s",
		"from": end.Add(-2 * time.Second).Format(time.RFC3339), "to": end.Add(time.Second).Format(time.RFC3339),
	}}
	one := f.postAs(auth.RoleViewer, `query($q: SeriesQuery!) { a: series(query: $q) { points { v } } }`, vars)
	if len(one.Errors) > 0 {
		t.Fatalf("3 points of 5: %+v", one.Errors)
	}
	two := f.postAs(auth.RoleViewer, `query($q: SeriesQuery!) {
		a: series(query: $q) { points { v } }
		b: series(query: $q) { points { v } } }`, vars)
	if two.code() != CodeBadUserInput || !strings.Contains(two.Errors[0].Message, "points") {
		t.Fatalf("6 points of 5: %+v", two.Errors)
	}
}

func TestSeriesQuery(t *testing.T) {
	f := newFixture(t, nil)
	end := time.Now().Truncate(time.Second)
	f.writeSamples("sys.cpu.user", "web1", end, 1, 2, 3)
	vars := map[string]any{"q": map[string]any{
		"metric": "sys.cpu.user", "step": "1s",
		"from": end.Add(-time.Minute).Format(time.RFC3339), "to": end.Add(time.Second).Format(time.RFC3339),
	}}
	const q = `query($q: SeriesQuery!) { series(query: $q) { metric tags { key value } points { v } info { name } } }`
	got := decode[struct {
		Series []struct {
			Metric string
			Tags   []struct{ Key, Value string }
			Points []struct{ V float64 }
			Info   struct{ Name string }
		}
	}](t, f.postAs(auth.RoleViewer, q, vars))
	if len(got.Series) != 1 {
		t.Fatalf("series = %+v", got.Series)
	}
	s := got.Series[0]
	if s.Metric != "sys.cpu.user" || len(s.Tags) != 1 || s.Tags[0].Value != "web1" || len(s.Points) != 3 || s.Info.Name != "sys.cpu.user" {
		t.Fatalf("series = %+v", s)
	}

	vars["q"].(map[string]any)["step"] = "1x"
	bad := f.postAs(auth.RoleViewer, q, vars)
	if bad.code() != CodeBadUserInput || !strings.Contains(bad.Errors[0].Message, `invalid Duration "1x"`) {
		t.Fatalf("bad step: %+v", bad.Errors)
	}
	vars["q"].(map[string]any)["step"] = "1s"
	vars["q"].(map[string]any)["from"] = end.Format(time.RFC3339)
	vars["q"].(map[string]any)["to"] = end.Add(-time.Hour).Format(time.RFC3339)
	bad = f.postAs(auth.RoleViewer, q, vars)
	if bad.code() != CodeBadUserInput || !strings.Contains(bad.Errors[0].Message, "must be before to") {
		t.Fatalf("reversed range: %+v", bad.Errors)
	}
}

func TestAgents(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := time.Now()
	heartbeats := []store.Agent{
		{Host: "db1", IP: "10.0.0.2", Version: "1.0.0", OS: "linux", HeartbeatInterval: 10 * time.Second, LastSeen: now.Add(-time.Hour)},
		{Host: "web1", IP: "10.0.0.1", Version: "1.0.0", OS: "linux", HeartbeatInterval: 10 * time.Second, LastSeen: now,
			SpoolBytes: 512, DroppedPoints: 3,
			Collectors: []store.AgentCollector{
				{Name: "cpu", Up: true, LastRun: now.Add(-5 * time.Second)},
				{Name: "mysql", Up: false, LastError: "connection refused"},
			}},
	}
	for _, a := range heartbeats {
		if err := f.st.RecordHeartbeat(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	type collector struct {
		Name      string
		Up        bool
		LastError *string
		LastRun   *string
	}
	got := decode[struct {
		Agents []struct {
			Host            string
			IP              string
			Up              bool
			IntervalSeconds int
			SpoolBytes      int
			DroppedPoints   int
			Collectors      []collector
		}
	}](t, f.postAs(auth.RoleViewer, `{ agents { host ip up intervalSeconds spoolBytes droppedPoints lastSeen
		collectors { name up lastError lastRun } } }`, nil))
	hosts := make([]string, len(got.Agents))
	for i, a := range got.Agents {
		hosts[i] = a.Host
	}
	if !slices.Equal(hosts, []string{"db1", "web1"}) {
		t.Fatalf("hosts = %v", hosts)
	}
	if got.Agents[0].Up {
		t.Error("db1, silent for an hour, is up")
	}
	web := got.Agents[1]
	if !web.Up || web.IP != "10.0.0.1" || web.IntervalSeconds != 10 || web.SpoolBytes != 512 || web.DroppedPoints != 3 {
		t.Errorf("web1 = %+v", web)
	}
	if len(web.Collectors) != 2 {
		t.Fatalf("collectors = %+v", web.Collectors)
	}
	if c := web.Collectors[0]; !c.Up || c.LastError != nil || c.LastRun == nil {
		t.Errorf("cpu = %+v", c)
	}
	if c := web.Collectors[1]; c.Up || c.LastError == nil || *c.LastError != "connection refused" || c.LastRun != nil {
		t.Errorf("mysql = %+v", c)
	}
}

func TestGraphiQLPage(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := f.srv.Client().Get(f.srv.URL + "/graphiql")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /graphiql: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
