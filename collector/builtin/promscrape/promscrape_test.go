package promscrape

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

type tags = map[string]string

// exporter serves a real client_golang registry through promhttp, as any Go
// exporter does.
func exporter(t *testing.T) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests."}, []string{"code", "method"})
	requests.WithLabelValues("200", "get").Add(7)
	requests.WithLabelValues("500", "post").Add(2)
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "room_temperature_celsius", Help: "Temperature."})
	temp.Set(21.5)
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "request_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	for _, v := range []float64{0.05, 0.5, 3} {
		latency.Observe(v)
	}
	size := prometheus.NewSummary(prometheus.SummaryOpts{Name: "response_bytes", Help: "Size.", Objectives: map[float64]float64{0.5: 0.05}})
	size.Observe(100)
	empty := prometheus.NewSummary(prometheus.SummaryOpts{Name: "idle_bytes", Help: "Never observed.", Objectives: map[float64]float64{0.9: 0.01}})
	rule := prometheus.NewGauge(prometheus.GaugeOpts{Name: "job:requests:rate5m", Help: "Recording rule style."})
	rule.Set(3)
	reg.MustRegister(requests, temp, latency, size, empty, rule)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCollectMapsEveryType(t *testing.T) {
	srv := exporter(t)
	cfg := DefaultConfig()
	cfg.URL = srv.URL + "/metrics"
	cfg.Prefix = "app."
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &pointtest.Sink{}
	if err := c.Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	inst := strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_")
	tg := func(kv ...string) map[string]string {
		return pointtest.Tags(append([]string{"instance", inst}, kv...)...)
	}
	for _, tc := range []struct {
		name string
		want []pointtest.Expect
	}{
		{"counter with labels as tags", []pointtest.Expect{
			{Metric: "app.http_requests_total", Tags: tg("code", "200", "method", "get"), Value: 7},
			{Metric: "app.http_requests_total", Tags: tg("code", "500", "method", "post"), Value: 2},
		}},
		{"gauge", []pointtest.Expect{{Metric: "app.room_temperature_celsius", Tags: tg(), Value: 21.5}}},
		{"histogram buckets, sum and count", []pointtest.Expect{
			{Metric: "app.request_seconds_bucket", Tags: tg("le", "0.1"), Value: 1},
			{Metric: "app.request_seconds_bucket", Tags: tg("le", "1"), Value: 2},
			{Metric: "app.request_seconds_bucket", Tags: tg("le", "inf"), Value: 3},
			{Metric: "app.request_seconds_sum", Tags: tg(), Value: 3.55},
			{Metric: "app.request_seconds_count", Tags: tg(), Value: 3},
		}},
		{"summary quantiles, sum and count", []pointtest.Expect{
			{Metric: "app.response_bytes", Tags: tg("quantile", "0.5"), Value: 100},
			{Metric: "app.response_bytes_sum", Tags: tg(), Value: 100},
			{Metric: "app.response_bytes_count", Tags: tg(), Value: 1},
			{Metric: "app.idle_bytes_count", Tags: tg(), Value: 0},
		}},
		{"colon in a name becomes underscore", []pointtest.Expect{{Metric: "app.job_requests_rate5m", Tags: tg(), Value: 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) { pointtest.Check(t, s, tc.want) })
	}
	if _, ok := s.Lookup("app.idle_bytes", tg("quantile", "0.9")); ok {
		t.Error("NaN quantile of an empty summary was emitted")
	}
}

func TestIncludeExclude(t *testing.T) {
	srv := exporter(t)
	for _, tc := range []struct {
		name             string
		include, exclude []string
		want, notWant    []string
	}{
		{"include keeps only matches", []string{"http_.*"}, nil, []string{"http_requests_total"}, []string{"room_temperature_celsius", "request_seconds_count"}},
		{"exclude drops matches", nil, []string{"request_.*", "response_.*"}, []string{"http_requests_total", "room_temperature_celsius"}, []string{"request_seconds_count", "response_bytes_sum"}},
		{"patterns are anchored", []string{"requests_total"}, nil, nil, []string{"http_requests_total"}},
		{"exclude wins over include", []string{".*"}, []string{"room_.*"}, []string{"http_requests_total"}, []string{"room_temperature_celsius"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Include, cfg.Exclude = srv.URL, tc.include, tc.exclude
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := &pointtest.Sink{}
			if err := c.Collect(context.Background(), s.Emit); err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.want {
				if !s.Has(m) {
					t.Errorf("missing %s", m)
				}
			}
			for _, m := range tc.notWant {
				if s.Has(m) {
					t.Errorf("unexpected %s", m)
				}
			}
		})
	}
}

func TestMaxSamplesIsReported(t *testing.T) {
	srv := exporter(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.MaxSamples = srv.URL, 3
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &pointtest.Sink{}
	err = c.Collect(context.Background(), s.Emit)
	if !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("err = %v, want ErrTooManySamples", err)
	}
	if n := len(s.Points()); n != 3 {
		t.Errorf("emitted %d points, want max_samples = 3", n)
	}
}

func TestScrapeErrorsNameTheURL(t *testing.T) {
	srv := httptest.NewServer(nil) // 404 for every path
	defer srv.Close()
	for _, tc := range []struct{ name, url, want string }{
		{"not found", srv.URL + "/nothing", "404"},
		{"connection refused", "http://127.0.0.1:1/metrics", "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = tc.url
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = c.Collect(ctx, (&pointtest.Sink{}).Emit)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.url) {
				t.Errorf("err = %v, want one naming %s and %s", err, tc.url, tc.want)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		option string
	}{
		{"no scheme", func(c *Config) { c.URL = "localhost:9100" }, `"url"`},
		{"bad include", func(c *Config) { c.Include = []string{"("} }, `"include"`},
		{"bad exclude", func(c *Config) { c.Exclude = []string{"["} }, `"exclude"`},
		{"zero max samples", func(c *Config) { c.MaxSamples = 0 }, `"max_samples"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.option) {
				t.Errorf("err = %v, want one naming %s", err, tc.option)
			}
		})
	}
}
