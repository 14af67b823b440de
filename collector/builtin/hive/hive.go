// Package hive checks Hive: HiveServer2 through the JMX servlet of its web UI
// (/jmx on :10002, where hive.server2.metrics.enabled publishes its metrics
// under the "metrics" domain) and the metastore by connecting to its Thrift
// port:
//
//	hadoop.hive.hiveserver2.up            1 when /jmx answered
//	hadoop.hive.hiveserver2.<name>        the Value of metrics:name=<name> (open_connections,
//	                                      hs2_open_sessions, memory.heap.used, threads.count, ...)
//	hadoop.hive.hiveserver2.<name>.count  the Count of a counter or timer (api_*, hs2_*_queries ...)
//	hadoop.hive.hiveserver2.<name>.mean   the Mean of a timer
//	hadoop.hive.hiveserver2.cpu_load      the JVM's ProcessCpuLoad (0-1)
//	hadoop.hive.hiveserver2.open_files    the JVM's OpenFileDescriptorCount
//	hadoop.hive.metastore.up              1 when the metastore accepted a TCP connection
//	hadoop.hive.metastore.connect_ms      how long that took
//
// Every point carries instance=<host>_<port> of what it checks. For the
// process figures of the seed (hadoop.hive.cpu_user_rate, mem_rss, ...) watch
// the HiveServer2 and metastore processes with the process collector.
package hive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/httpjson"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// Config is the `hive` section of agent.yaml; an empty address skips its check.
type Config struct {
	// HiveServer2URL is HiveServer2's web UI, e.g. http://hs2:10002.
	HiveServer2URL string `yaml:"hiveserver2_url"`
	// Metastore is the metastore's Thrift address, host:port.
	Metastore string `yaml:"metastore"`
}

// DefaultConfig returns the defaults documented in the example agent.yaml.
func DefaultConfig() Config {
	return Config{HiveServer2URL: "http://127.0.0.1:10002", Metastore: "127.0.0.1:9083"}
}

// Collector checks one HiveServer2 and one metastore.
type Collector struct {
	hs2, hs2Instance string
	metastore        string
	client           *http.Client
	now              func() time.Time
}

// New validates cfg.
func New(cfg Config) (*Collector, error) {
	c := &Collector{metastore: cfg.Metastore, client: &http.Client{}, now: time.Now}
	if cfg.HiveServer2URL != "" {
		u, err := url.Parse(cfg.HiveServer2URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("hiveserver2_url: want HiveServer2's web UI such as http://host:10002, got %q", cfg.HiveServer2URL)
		}
		c.hs2, c.hs2Instance = strings.TrimSuffix(cfg.HiveServer2URL, "/")+"/jmx", u.Host
	}
	if cfg.Metastore != "" {
		if _, _, err := net.SplitHostPort(cfg.Metastore); err != nil {
			return nil, fmt.Errorf("metastore: want host:port, got %q: %v", cfg.Metastore, err)
		}
	}
	if c.hs2 == "" && c.metastore == "" {
		return nil, errors.New("hiveserver2_url and metastore are both empty: nothing to check")
	}
	return c, nil
}

// Name is the collector kind.
func (c *Collector) Name() string { return "hive" }

// Collect checks both; one failing does not skip the other.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	now := c.now()
	var errs []error
	if c.hs2 != "" {
		w := points.Writer{Emit: emit, Time: now, Tags: map[string]string{"instance": c.hs2Instance}}
		err := c.collectHS2(ctx, w)
		w.Add("hadoop.hive.hiveserver2.up", upValue(err))
		errs = append(errs, err)
	}
	if c.metastore != "" {
		w := points.Writer{Emit: emit, Time: now, Tags: map[string]string{"instance": c.metastore}}
		start := time.Now()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.metastore)
		if err == nil {
			w.Add("hadoop.hive.metastore.connect_ms", float64(time.Since(start).Microseconds())/1000)
			conn.Close()
		} else {
			err = fmt.Errorf("metastore %s: %w", c.metastore, err)
		}
		w.Add("hadoop.hive.metastore.up", upValue(err))
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func upValue(err error) float64 {
	if err != nil {
		return 0
	}
	return 1
}

func (c *Collector) collectHS2(ctx context.Context, w points.Writer) error {
	var doc struct {
		Beans []map[string]any `json:"beans"`
	}
	if err := httpjson.Get(ctx, c.client, c.hs2, &doc); err != nil {
		return err
	}
	for _, b := range doc.Beans {
		name, _ := b["name"].(string)
		switch {
		case strings.HasPrefix(name, "metrics:name="):
			metric := "hadoop.hive.hiveserver2." + strings.TrimPrefix(name, "metrics:name=")
			for attr, suffix := range map[string]string{"Value": "", "Count": ".count", "Mean": ".mean"} {
				if v, ok := b[attr].(float64); ok {
					w.Add(metric+suffix, v)
				}
			}
		case name == "java.lang:type=OperatingSystem":
			if v, ok := b["ProcessCpuLoad"].(float64); ok {
				w.Add("hadoop.hive.hiveserver2.cpu_load", v)
			}
			if v, ok := b["OpenFileDescriptorCount"].(float64); ok {
				w.Add("hadoop.hive.hiveserver2.open_files", v)
			}
		}
	}
	return nil
}
