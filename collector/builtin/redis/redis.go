// Package redis is the built-in Redis collector: it reads INFO and reports
// memory, clients, throughput, hits and misses, evictions, keyspace per
// database, replication and persistence as redis.<group>.<name>.
package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/rate"
)

// Config is the `redis` section of agent.yaml.
type Config struct {
	Address  string `yaml:"address"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// DefaultConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultConfig() Config { return Config{Address: "127.0.0.1:6379"} }

// Collector reads one Redis server.
type Collector struct {
	client  *goredis.Client
	address string
	now     func() time.Time
	rates   *rate.Tracker
	prev    map[string]float64
}

// New validates cfg and prepares a client; it connects at the first
// collection.
func New(cfg Config) (*Collector, error) {
	if cfg.Address == "" {
		return nil, errors.New(`redis: option "address" must not be empty`)
	}
	client := goredis.NewClient(&goredis.Options{
		Addr:     cfg.Address,
		Username: cfg.Username,
		Password: cfg.Password,
		PoolSize: 1,
		// The collection timeout is the agent's; these only bound a single
		// stuck connection attempt.
		DialTimeout:     5 * time.Second,
		MaxRetries:      -1,
		DisableIdentity: true,
	})
	return &Collector{client: client, address: cfg.Address, now: time.Now, rates: rate.New(), prev: map[string]float64{}}, nil
}

// Name implements collector.Collector.
func (c *Collector) Name() string { return "redis" }

// Close releases the connection.
func (c *Collector) Close() error { return c.client.Close() }

// Collect implements collector.Collector.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	text, err := c.client.Info(ctx, "all").Result()
	if err != nil {
		return fmt.Errorf("redis %s: INFO: %w", c.address, err)
	}
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.address}}
	c.emitInfo(w, parseInfo(text))
	c.rates.Prune()
	return nil
}

// info is INFO's output: plain fields and the keyspace lines per database.
type info struct {
	fields   map[string]string
	keyspace map[string]map[string]float64
}

func parseInfo(text string) info {
	in := info{fields: map[string]string{}, keyspace: map[string]map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if strings.HasPrefix(key, "db") && strings.Contains(value, "keys=") {
			in.keyspace[key] = parseKeyspace(value)
			continue
		}
		in.fields[key] = value
	}
	return in
}

// parseKeyspace reads "keys=1,expires=0,avg_ttl=0".
func parseKeyspace(s string) map[string]float64 {
	out := map[string]float64{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	return out
}

func (in info) number(key string) (float64, bool) {
	v, err := strconv.ParseFloat(in.fields[key], 64)
	return v, err == nil
}

// plain maps INFO fields that are emitted as they are.
var plain = map[string]string{
	"uptime_in_seconds":           "redis.server.uptime",
	"used_memory":                 "redis.memory.used",
	"used_memory_rss":             "redis.memory.rss",
	"used_memory_peak":            "redis.memory.peak",
	"used_memory_lua":             "redis.memory.lua",
	"maxmemory":                   "redis.memory.max",
	"mem_fragmentation_ratio":     "redis.memory.fragmentation_ratio",
	"connected_clients":           "redis.clients.connected",
	"blocked_clients":             "redis.clients.blocked",
	"total_connections_received":  "redis.clients.connections_received",
	"rejected_connections":        "redis.clients.rejected",
	"total_commands_processed":    "redis.stats.commands_processed",
	"instantaneous_ops_per_sec":   "redis.stats.instantaneous_ops_per_sec",
	"keyspace_hits":               "redis.stats.keyspace_hits",
	"keyspace_misses":             "redis.stats.keyspace_misses",
	"evicted_keys":                "redis.stats.evicted_keys",
	"expired_keys":                "redis.stats.expired_keys",
	"total_net_input_bytes":       "redis.net.input_bytes",
	"total_net_output_bytes":      "redis.net.output_bytes",
	"connected_slaves":            "redis.replication.connected_slaves",
	"master_repl_offset":          "redis.replication.master_repl_offset",
	"master_last_io_seconds_ago":  "redis.replication.master_last_io_seconds_ago",
	"rdb_changes_since_last_save": "redis.persistence.rdb_changes_since_last_save",
	"rdb_last_save_time":          "redis.persistence.rdb_last_save_time",
	"rdb_bgsave_in_progress":      "redis.persistence.rdb_bgsave_in_progress",
	"aof_enabled":                 "redis.persistence.aof_enabled",
	"aof_rewrite_in_progress":     "redis.persistence.aof_rewrite_in_progress",
	"loading":                     "redis.persistence.loading",
}

func (c *Collector) emitInfo(w points.Writer, in info) {
	for field, metric := range plain {
		if v, ok := in.number(field); ok {
			w.Add(metric, v)
		}
	}
	c.emitRates(w, in)
	emitReplication(w, in)
	emitPersistence(w, in)
	for db, ks := range in.keyspace {
		for _, k := range []string{"keys", "expires", "avg_ttl"} {
			if v, ok := ks[k]; ok {
				w.Add("redis.keyspace."+k, v, "db", db)
			}
		}
	}
}

// emitRates derives the per-second throughput and the hit ratio over the
// interval, which unlike INFO's instantaneous_ops_per_sec cover the whole
// interval and not just the last few seconds.
func (c *Collector) emitRates(w points.Writer, in info) {
	if v, ok := in.number("total_commands_processed"); ok {
		if r, ok := c.rates.Rate("commands", v, w.Time); ok {
			w.Add("redis.stats.ops_per_sec", r)
		}
	}
	hits, okH := in.number("keyspace_hits")
	misses, okM := in.number("keyspace_misses")
	if !okH || !okM {
		return
	}
	prevHits, seen := c.prev["hits"]
	prevMisses := c.prev["misses"]
	c.prev["hits"], c.prev["misses"] = hits, misses
	dh, dm := hits-prevHits, misses-prevMisses
	if seen && dh >= 0 && dm >= 0 && dh+dm > 0 {
		w.Add("redis.stats.hit_ratio", dh/(dh+dm))
	}
}

func emitReplication(w points.Writer, in info) {
	role := in.fields["role"]
	if role == "" {
		return
	}
	master := 0.0
	if role == "master" {
		master = 1
	}
	w.Add("redis.replication.is_master", master)
	if role != "slave" {
		return
	}
	w.Add("redis.replication.master_link_up", boolValue(in.fields["master_link_status"] == "up"))
	mo, ok1 := in.number("master_repl_offset")
	so, ok2 := in.number("slave_repl_offset")
	if ok1 && ok2 {
		w.Add("redis.replication.offset_lag", mo-so)
	}
}

func emitPersistence(w points.Writer, in info) {
	if s, ok := in.fields["rdb_last_bgsave_status"]; ok {
		w.Add("redis.persistence.rdb_last_bgsave_ok", boolValue(s == "ok"))
	}
	if s, ok := in.fields["aof_last_bgrewrite_status"]; ok {
		w.Add("redis.persistence.aof_last_bgrewrite_ok", boolValue(s == "ok"))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
