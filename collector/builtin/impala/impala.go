// Package impala collects the Impala daemons (impalad, catalogd, statestored)
// from the JSON of their debug web server, /metrics?json. Metrics are named
// impala.<daemon>.<Impala's metric name>, as in the seed catalogue:
//
//	plain metrics (gauges, counters)  impala.impalad.impala-server.num-queries
//	histograms                        impala.impalad.impala-server.ddl-durations-ms.{25th,50th,75th,90th,95th,99.9th,min,max,count}
//	statistics                        impala.catalogd.statestore-subscriber.heartbeat-interval-time.{last,min,max,avg,count}
//	impala.<daemon>.up                1 when the daemon answered
//
// Every point carries instance=<host>_<port>. Non-numeric metrics (versions,
// addresses, lists) are skipped.
package impala

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/httpjson"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// Config is the section of one Impala daemon in agent.yaml.
type Config struct {
	// URL is the daemon's debug web server: impalad :25000, statestored
	// :25010, catalogd :25020.
	URL string `yaml:"url"`
	// Daemon names the daemon in the metric names: impalad, catalogd or
	// statestore.
	Daemon string `yaml:"daemon"`
}

// DefaultConfig returns the defaults documented in the example agent.yaml.
func DefaultConfig() Config { return Config{URL: "http://127.0.0.1:25000", Daemon: "impalad"} }

// Collector reads one daemon.
type Collector struct {
	url, prefix, instance string
	client                *http.Client
	now                   func() time.Time
}

// New validates cfg.
func New(cfg Config) (*Collector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: want the daemon's web server such as http://host:25000, got %q", cfg.URL)
	}
	switch cfg.Daemon {
	case "impalad", "catalogd", "statestore":
	default:
		return nil, fmt.Errorf("daemon: want impalad, catalogd or statestore, got %q", cfg.Daemon)
	}
	return &Collector{url: strings.TrimSuffix(cfg.URL, "/") + "/metrics?json", prefix: "impala." + cfg.Daemon,
		instance: u.Host, client: &http.Client{}, now: time.Now}, nil
}

// Name is the collector kind.
func (c *Collector) Name() string { return "impala" }

// group is a node of the metric_group tree.
type group struct {
	Name     string                       `json:"name"`
	Metrics  []map[string]json.RawMessage `json:"metrics"`
	Children []group                      `json:"child_groups"`
}

// Collect reads the metric tree and emits every numeric metric.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	var doc struct {
		Root group `json:"metric_group"`
	}
	if err := httpjson.Get(ctx, c.client, c.url, &doc); err != nil {
		w.Add(c.prefix+".up", 0)
		return err
	}
	w.Add(c.prefix+".up", 1)
	c.emitGroup(w, doc.Root)
	return nil
}

// The summary fields of HISTOGRAM and STATS metrics, and their metric suffixes.
var (
	histogramFields = []string{"25th", "50th", "75th", "90th", "95th", "99.9th", "min", "max", "count"}
	statsFields     = map[string]string{"last": "last", "min": "min", "max": "max", "mean": "avg", "count": "count"}
)

func (c *Collector) emitGroup(w points.Writer, g group) {
	for _, m := range g.Metrics {
		var name, kind string
		if json.Unmarshal(m["name"], &name) != nil || name == "" {
			continue
		}
		_ = json.Unmarshal(m["kind"], &kind)
		metric := c.prefix + "." + name
		switch kind {
		case "HISTOGRAM":
			for _, f := range histogramFields {
				if v, ok := number(m[f]); ok {
					w.Add(metric+"."+f, v)
				}
			}
		case "STATS":
			for f, suffix := range statsFields {
				if v, ok := number(m[f]); ok {
					w.Add(metric+"."+suffix, v)
				}
			}
		default:
			if v, ok := number(m["value"]); ok {
				w.Add(metric, v)
			}
		}
	}
	for _, child := range g.Children {
		c.emitGroup(w, child)
	}
}

// number reads a JSON number or boolean (true = 1).
func number(raw json.RawMessage) (float64, bool) {
	var v float64
	if json.Unmarshal(raw, &v) == nil {
		return v, true
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
