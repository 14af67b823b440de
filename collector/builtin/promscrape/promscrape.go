// Package promscrape is the built-in collector for Prometheus exporters: it
// scrapes a /metrics endpoint in the text exposition format (node_exporter,
// jmx_exporter, mysqld_exporter...) and turns every sample into a point, the
// labels becoming tags.
package promscrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// Config is the `prometheus` section of agent.yaml.
type Config struct {
	// URL of the /metrics endpoint.
	URL string `yaml:"url"`
	// Prefix is prepended to every metric name, e.g. "node." gives
	// node.node_load1.
	Prefix string `yaml:"prefix"`
	// Include keeps only the metric families whose name matches one of these
	// regular expressions (all when empty); Exclude then drops matches, as
	// Prometheus' keep and drop relabel actions do.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// MaxSamples bounds one scrape, so a misbehaving exporter with
	// unbounded label values cannot flood the server.
	MaxSamples int `yaml:"max_samples"`
}

// DefaultConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultConfig() Config {
	return Config{URL: "http://127.0.0.1:9100/metrics", MaxSamples: 20000}
}

// Collector scrapes one endpoint.
type Collector struct {
	url        string
	instance   string
	prefix     string
	include    []*regexp.Regexp
	exclude    []*regexp.Regexp
	maxSamples int
	client     *http.Client
	now        func() time.Time
}

// New validates cfg.
func New(cfg Config) (*Collector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf(`prometheus: option "url": want an http(s) URL, got %q`, cfg.URL)
	}
	if cfg.MaxSamples <= 0 {
		return nil, fmt.Errorf(`prometheus: option "max_samples" must be positive, got %d`, cfg.MaxSamples)
	}
	include, err := compileAll("include", cfg.Include)
	if err != nil {
		return nil, err
	}
	exclude, err := compileAll("exclude", cfg.Exclude)
	if err != nil {
		return nil, err
	}
	return &Collector{
		url: cfg.URL, instance: u.Host, prefix: cfg.Prefix,
		include: include, exclude: exclude, maxSamples: cfg.MaxSamples,
		client: &http.Client{}, now: time.Now,
	}, nil
}

func compileAll(option string, patterns []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		// Anchored like Prometheus' relabel regexes: "node_cpu.*" must not
		// match "go_node_cpu".
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return nil, fmt.Errorf("prometheus: option %q: %w", option, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// Name implements collector.Collector.
func (c *Collector) Name() string { return "prometheus" }

// ErrTooManySamples is returned (after emitting max_samples points) when a
// scrape holds more samples than allowed.
var ErrTooManySamples = errors.New("prometheus: scrape exceeds max_samples")

// Collect implements collector.Collector.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	families, err := c.scrape(ctx)
	if err != nil {
		return err
	}
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	budget := &sampleBudget{left: c.maxSamples}
	for name, mf := range families {
		if !c.keep(name) {
			continue
		}
		c.emitFamily(w, mf, budget)
	}
	if budget.dropped > 0 {
		return fmt.Errorf("%w: %s: %d samples dropped (max_samples %d)", ErrTooManySamples, c.url, budget.dropped, c.maxSamples)
	}
	return nil
}

func (c *Collector) scrape(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus: GET %s: %w", c.url, err)
	}
	// Ask for the classic text format, which is what expfmt's TextParser
	// reads; exporters fall back to it for any client.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus: GET %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("prometheus: GET %s: status %s", c.url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus: parse %s: %w", c.url, err)
	}
	return families, nil
}

func (c *Collector) keep(name string) bool {
	if len(c.include) > 0 && !anyMatch(c.include, name) {
		return false
	}
	return !anyMatch(c.exclude, name)
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

type sampleBudget struct{ left, dropped int }

// emitFamily maps one family as Prometheus' own storage does: counters,
// gauges and untyped values keep their name; summaries give <name>_sum,
// <name>_count and <name>{quantile=}; histograms give <name>_sum,
// <name>_count and <name>_bucket{le=}.
func (c *Collector) emitFamily(w points.Writer, mf *dto.MetricFamily, budget *sampleBudget) {
	name := c.prefix + mf.GetName()
	for _, m := range mf.GetMetric() {
		mw := w
		if ts := m.GetTimestampMs(); ts != 0 {
			mw.Time = time.UnixMilli(ts)
		}
		mw = mw.With(labelPairs(m.GetLabel())...)
		add := func(metric string, v float64, kv ...string) {
			// The server stores no NaN or infinity (a summary without
			// observations reports NaN quantiles); such samples are skipped.
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return
			}
			if budget.left == 0 {
				budget.dropped++
				return
			}
			budget.left--
			mw.Add(metric, v, kv...)
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			add(name, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			add(name, m.GetGauge().GetValue())
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			add(name+"_sum", s.GetSampleSum())
			add(name+"_count", float64(s.GetSampleCount()))
			for _, q := range s.GetQuantile() {
				add(name, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
			}
		case dto.MetricType_HISTOGRAM:
			h := m.GetHistogram()
			add(name+"_sum", h.GetSampleSum())
			add(name+"_count", float64(h.GetSampleCount()))
			for _, b := range h.GetBucket() {
				add(name+"_bucket", float64(b.GetCumulativeCount()), "le", formatFloat(b.GetUpperBound()))
			}
		default:
			add(name, m.GetUntyped().GetValue())
		}
	}
}

func labelPairs(labels []*dto.LabelPair) []string {
	kv := make([]string, 0, 2*len(labels))
	for _, l := range labels {
		kv = append(kv, l.GetName(), l.GetValue())
	}
	return kv
}

// formatFloat writes bucket bounds and quantiles; +Inf becomes "inf"
// because the server accepts no '+' in a tag value.
func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
