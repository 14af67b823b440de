package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector"
)

// apiClient calls the management API of one agent.
type apiClient struct {
	t   *testing.T
	url string
}

// do sends a request (with the agent's token when token is set) and decodes
// the JSON answer into out, returning the status.
func (c apiClient) do(method, path string, token bool, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if token {
		req.Header.Set("Authorization", "Bearer secret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func (c apiClient) collector(name string) (CollectorStatus, bool) {
	c.t.Helper()
	var list []CollectorStatus
	if code := c.do("GET", "/collectors", false, &list); code != http.StatusOK {
		c.t.Fatalf("GET /collectors: %d", code)
	}
	for _, st := range list {
		if st.Name == name {
			return st, true
		}
	}
	return CollectorStatus{}, false
}

// TestManagementAPI drives every endpoint of the local API of a running
// agent: status, the collector list with health, enable and disable (token
// required), and reload, good and bad.
func TestManagementAPI(t *testing.T) {
	srv := newFakeServer(t)
	seq := &sequence{perRun: 1}
	broken := funcCollector{"broken", func(context.Context, collector.Emit) error { return errors.New("target unreachable") }}
	factory := func(kind string, opts map[string]any) (collector.Collector, error) {
		if kind == "broken" {
			return broken, nil
		}
		return seq.factory(kind, opts)
	}
	cfg := testConfig(srv, t.TempDir())
	cfg.Collectors["broken"] = CollectorConfig{Interval: 20 * time.Millisecond}
	reloaded := make(chan Config, 1)
	var loads atomic.Int32
	load := func() (Config, error) {
		defer loads.Add(1)
		select {
		case c := <-reloaded:
			return c, nil
		default:
			return Config{}, errors.New("agent config agent.yaml: yaml: line 3: did not find expected key")
		}
	}
	hup := make(chan os.Signal)
	a := runAgent(t, cfg, Deps{Factory: factory, Version: "test", Log: testLog(t), Load: load, ReloadOn: hup})
	api := httptest.NewServer(a.Handler())
	defer api.Close()
	c := apiClient{t: t, url: api.URL}

	eventually(t, "both collectors ran", func() bool {
		st, _ := c.collector("broken")
		return !st.LastRun.IsZero() && seq.emitted() > 0
	})

	t.Run("status", func(t *testing.T) {
		var st Status
		if code := c.do("GET", "/status", false, &st); code != http.StatusOK {
			t.Fatalf("GET /status: %d", code)
		}
		if st.Host != "h1" || st.Version != "test" || st.Server != srv.URL || st.Collectors != 2 || st.CollectorsUp != 1 {
			t.Fatalf("status %+v: want host h1, version test, server %s, 2 collectors of which 1 up", st, srv.URL)
		}
	})

	t.Run("collectors with their health", func(t *testing.T) {
		st, ok := c.collector("broken")
		if !ok || st.Up || st.LastError != "target unreachable" || st.Errors == 0 || st.Type != "builtin" || !st.Enabled || st.IntervalSeconds != 0.02 {
			t.Fatalf("broken collector %+v: want down with its error, enabled, every 0.02s", st)
		}
		if st, _ := c.collector("seq"); !st.Up || st.LastError != "" {
			t.Fatalf("seq collector %+v: want up", st)
		}
	})

	t.Run("disable and enable need the token", func(t *testing.T) {
		if code := c.do("POST", "/collectors/seq/disable", false, nil); code != http.StatusUnauthorized {
			t.Fatalf("disable without the token: %d, want 401", code)
		}
		if st, _ := c.collector("seq"); !st.Enabled {
			t.Fatal("disabled by a request without the token")
		}
		var answer map[string]any
		if code := c.do("POST", "/collectors/seq/disable", true, &answer); code != http.StatusOK || answer["enabled"] != false {
			t.Fatalf("disable: %d %v", code, answer)
		}
		if st, _ := c.collector("seq"); st.Enabled {
			t.Fatal("/collectors still shows seq enabled")
		}
		// A run already under way may finish; after it, nothing more.
		time.Sleep(50 * time.Millisecond)
		before := seq.emitted()
		time.Sleep(200 * time.Millisecond) // 10 intervals
		if after := seq.emitted(); after != before {
			t.Fatalf("a disabled collector emitted %d points", after-before)
		}
		if code := c.do("POST", "/collectors/seq/enable", true, nil); code != http.StatusOK {
			t.Fatalf("enable: %d", code)
		}
		eventually(t, "the enabled collector runs again", func() bool { return seq.emitted() > before })
		if code := c.do("POST", "/collectors/nosuch/disable", true, &answer); code != http.StatusNotFound || !strings.Contains(answer["error"].(string), "nosuch") {
			t.Fatalf("disable an unknown collector: %d %v, want 404 naming it", code, answer)
		}
	})

	t.Run("reload", func(t *testing.T) {
		var answer map[string]any
		if code := c.do("POST", "/reload", false, &answer); code != http.StatusUnauthorized {
			t.Fatalf("reload without the token: %d, want 401", code)
		}
		if code := c.do("POST", "/reload", true, &answer); code != http.StatusUnprocessableEntity || !strings.Contains(answer["error"].(string), "line 3") {
			t.Fatalf("reload of a broken file: %d %v, want 422 with the file's error", code, answer)
		}
		if _, ok := c.collector("broken"); !ok {
			t.Fatal("a failed reload changed the running collectors")
		}
		bad := testConfig(srv, cfg.Spool.Dir)
		bad.Heartbeat.Interval = time.Second // the tests' 20ms is below what Validate allows
		bad.Collectors["seq"] = CollectorConfig{Interval: 10 * time.Millisecond, Timeout: time.Second}
		reloaded <- bad
		if code := c.do("POST", "/reload", true, &answer); code != http.StatusUnprocessableEntity || !strings.Contains(answer["error"].(string), "collectors.seq.timeout") {
			t.Fatalf("reload of an invalid setting: %d %v, want 422 naming it", code, answer)
		}

		next := testConfig(srv, cfg.Spool.Dir)
		next.Heartbeat.Interval = time.Second
		next.Tags = map[string]string{"env": "reloaded"}
		reloaded <- next // seq only: broken goes away
		if code := c.do("POST", "/reload", true, &answer); code != http.StatusOK || answer["collectors"] != 1.0 {
			t.Fatalf("reload: %d %v", code, answer)
		}
		if _, ok := c.collector("broken"); ok {
			t.Fatal("the collector removed from the file still runs after reload")
		}
		eventually(t, "points carry the reloaded tags", func() bool {
			for _, p := range srv.stored() {
				if p.Metric == "test.seq" && p.Tags["env"] == "reloaded" {
					return true
				}
			}
			return false
		})
	})

	t.Run("SIGHUP", func(t *testing.T) {
		n := loads.Load()
		hup <- syscall.SIGHUP // the broken file: logged, the collectors stay
		eventually(t, "SIGHUP re-read the file", func() bool { return loads.Load() > n })
		if _, ok := c.collector("seq"); !ok {
			t.Fatal("a failed reload on SIGHUP changed the running collectors")
		}
		next := testConfig(srv, cfg.Spool.Dir)
		next.Heartbeat.Interval = time.Second
		next.Collectors["broken"] = CollectorConfig{Interval: 20 * time.Millisecond}
		reloaded <- next
		hup <- syscall.SIGHUP
		eventually(t, "the collector added to the file runs after SIGHUP", func() bool {
			st, ok := c.collector("broken")
			return ok && !st.LastRun.IsZero()
		})
	})
}
