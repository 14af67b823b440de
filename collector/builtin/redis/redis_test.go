package redis

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

type tags = map[string]string

func TestEmitInfoFromRecordedReplica(t *testing.T) {
	b, err := os.ReadFile("testdata/info_replica.txt")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := &pointtest.Sink{}
	c.emitInfo(points.Writer{Emit: s.Emit, Time: time.Now()}, parseInfo(string(b)))
	for _, tc := range []struct {
		name string
		want []pointtest.Expect
	}{
		{"memory", []pointtest.Expect{
			{Metric: "redis.memory.used", Tags: tags{}, Value: 965984},
			{Metric: "redis.memory.rss", Tags: tags{}, Value: 7045120},
			{Metric: "redis.memory.fragmentation_ratio", Tags: tags{}, Value: 7.61},
			{Metric: "redis.memory.max", Tags: tags{}, Value: 0},
		}},
		{"clients and stats", []pointtest.Expect{
			{Metric: "redis.clients.connected", Tags: tags{}, Value: 1},
			{Metric: "redis.clients.blocked", Tags: tags{}, Value: 0},
			{Metric: "redis.stats.keyspace_hits", Tags: tags{}, Value: 900},
			{Metric: "redis.stats.keyspace_misses", Tags: tags{}, Value: 100},
			{Metric: "redis.stats.evicted_keys", Tags: tags{}, Value: 7},
			{Metric: "redis.server.uptime", Tags: tags{}, Value: 10427},
		}},
		{"keyspace per database", []pointtest.Expect{
			{Metric: "redis.keyspace.keys", Tags: tags{"db": "db0"}, Value: 1520},
			{Metric: "redis.keyspace.expires", Tags: tags{"db": "db0"}, Value: 12},
			{Metric: "redis.keyspace.avg_ttl", Tags: tags{"db": "db0"}, Value: 86123},
			{Metric: "redis.keyspace.keys", Tags: tags{"db": "db3"}, Value: 4},
		}},
		{"replication of a replica", []pointtest.Expect{
			{Metric: "redis.replication.is_master", Tags: tags{}, Value: 0},
			{Metric: "redis.replication.master_link_up", Tags: tags{}, Value: 1},
			{Metric: "redis.replication.offset_lag", Tags: tags{}, Value: 118900 - 118822},
			{Metric: "redis.replication.master_last_io_seconds_ago", Tags: tags{}, Value: 1},
		}},
		{"persistence", []pointtest.Expect{
			{Metric: "redis.persistence.rdb_last_bgsave_ok", Tags: tags{}, Value: 0},
			{Metric: "redis.persistence.rdb_last_save_time", Tags: tags{}, Value: 1795560496},
			{Metric: "redis.persistence.aof_enabled", Tags: tags{}, Value: 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { pointtest.Check(t, s, tc.want) })
	}
}

// testDB is a database number the tests of this package own on the shared
// Redis at 127.0.0.1:6379.
const testDB = 13

func TestCollectRealRedis(t *testing.T) {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: testDB})
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("Redis at 127.0.0.1:6379 is needed for this test: %v", err)
	}
	t.Cleanup(func() { rdb.FlushDB(context.Background()) })
	rdb.Set(ctx, "a", "1", 0)
	rdb.Set(ctx, "b", "2", 0)
	rdb.Set(ctx, "c", "3", time.Hour)

	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	c.now = func() time.Time { return t0 }
	first := &pointtest.Sink{}
	if err := c.Collect(ctx, first.Emit); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		rdb.Get(ctx, "a")
		rdb.Get(ctx, "missing")
	}
	c.now = func() time.Time { return t0.Add(10 * time.Second) }
	s := &pointtest.Sink{}
	if err := c.Collect(ctx, s.Emit); err != nil {
		t.Fatal(err)
	}
	inst := tags{"instance": "127.0.0.1_6379"}
	db := tags{"instance": "127.0.0.1_6379", "db": "db13"}
	pointtest.Check(t, s, []pointtest.Expect{
		{Metric: "redis.keyspace.keys", Tags: db, Value: 3},
		{Metric: "redis.keyspace.expires", Tags: db, Value: 1},
		{Metric: "redis.replication.is_master", Tags: inst, Value: 1},
	})
	hits0, _ := first.Lookup("redis.stats.keyspace_hits", inst)
	hits1, _ := s.Lookup("redis.stats.keyspace_hits", inst)
	if hits1-hits0 < 5 {
		t.Errorf("keyspace_hits grew by %v, want at least 5", hits1-hits0)
	}
	if ops, ok := s.Lookup("redis.stats.ops_per_sec", inst); !ok || ops < 1 {
		t.Errorf("redis.stats.ops_per_sec = %v, %v; want >= 1 (ten GETs over 10 s)", ops, ok)
	}
	if r, ok := s.Lookup("redis.stats.hit_ratio", inst); !ok || r <= 0 || r >= 1 {
		t.Errorf("redis.stats.hit_ratio = %v, %v; want between 0 and 1", r, ok)
	}
	if first.Has("redis.stats.ops_per_sec") {
		t.Error("first collection emitted a rate")
	}
}

func TestCollectUnreachableNamesAddress(t *testing.T) {
	c, err := New(Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Collect(context.Background(), (&pointtest.Sink{}).Emit)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("err = %v, want one naming 127.0.0.1:1", err)
	}
}
