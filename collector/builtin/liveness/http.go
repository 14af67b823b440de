package liveness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// HTTPTarget is one endpoint to check. Name is the target tag (default: the
// URL's host and path). ExpectStatus lists the status codes that count as
// up; empty means any code below 400.
type HTTPTarget struct {
	Name               string `yaml:"name"`
	URL                string `yaml:"url"`
	Method             string `yaml:"method"`
	ExpectStatus       []int  `yaml:"expect_status"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// HTTPConfig is the `http` section of agent.yaml.
type HTTPConfig struct {
	Targets []HTTPTarget `yaml:"targets"`
}

// HTTP checks endpoints: check.http.up, check.http.latency_ms (until the
// response headers) and check.http.status_code per target.
type HTTP struct {
	targets []HTTPTarget
	clients []*http.Client
	now     func() time.Time
}

// NewHTTP validates cfg.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New(`http: option "targets" must list at least one url`)
	}
	c := &HTTP{now: time.Now}
	for i, t := range cfg.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf(`http: option "targets": entry %d: url %q is not an http(s) URL`, i, t.URL)
		}
		if t.Method == "" {
			t.Method = http.MethodGet
		}
		if t.Name == "" {
			t.Name = u.Host + u.Path
		}
		c.targets = append(c.targets, t)
		c.clients = append(c.clients, newClient(t.InsecureSkipVerify))
	}
	return c, nil
}

func newClient(insecure bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A fresh connection per check measures what a new client sees (DNS,
	// connect, TLS), not a warm keep-alive connection.
	tr.DisableKeepAlives = true
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it per target
	}
	return &http.Client{Transport: tr}
}

// Name implements collector.Collector.
func (c *HTTP) Name() string { return "http" }

type httpResult struct {
	status  int
	latency time.Duration
}

// Collect requests every target concurrently and emits from this goroutine.
func (c *HTTP) Collect(ctx context.Context, emit collector.Emit) error {
	results := make([]httpResult, len(c.targets))
	var wg sync.WaitGroup
	for i, t := range c.targets {
		wg.Go(func() { results[i] = request(ctx, c.clients[i], t) })
	}
	wg.Wait()
	w := points.Writer{Emit: emit, Time: c.now()}
	for i, t := range c.targets {
		r := results[i]
		emitUp(w, "check.http.", t.Name, r.status != 0 && statusOK(t.ExpectStatus, r.status), r.latency)
		if r.status != 0 {
			w.Add("check.http.status_code", float64(r.status), "target", t.Name)
		}
	}
	return nil
}

func request(ctx context.Context, client *http.Client, t HTTPTarget) httpResult {
	req, err := http.NewRequestWithContext(ctx, t.Method, t.URL, nil)
	if err != nil {
		return httpResult{}
	}
	req.Header.Set("User-Agent", "amas-agent")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return httpResult{}
	}
	latency := time.Since(start)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return httpResult{status: resp.StatusCode, latency: latency}
}

func statusOK(expect []int, status int) bool {
	if len(expect) == 0 {
		return status < 400
	}
	return slices.Contains(expect, status)
}
