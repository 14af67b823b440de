package mysql

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

// The MariaDB of the development machines and CI (root, empty password).
const testDSN = "root@tcp(127.0.0.1:3306)/"

func newTestCollector(t *testing.T) *Collector {
	t.Helper()
	c, err := New(Config{DSN: testDSN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.db.PingContext(context.Background()); err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 is needed for this test: %v", err)
	}
	return c
}

func TestCollectMariaDB(t *testing.T) {
	c := newTestCollector(t)
	t0 := time.Now()
	c.now = func() time.Time { return t0 }
	first := &pointtest.Sink{}
	if err := c.Collect(context.Background(), first.Emit); err != nil {
		t.Fatal(err)
	}
	const selects = 40
	for range selects {
		if _, err := c.db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	c.now = func() time.Time { return t0.Add(10 * time.Second) }
	s := &pointtest.Sink{}
	if err := c.Collect(context.Background(), s.Emit); err != nil {
		t.Fatal(err)
	}
	inst := map[string]string{"instance": "127.0.0.1_3306"}
	get := func(metric string) float64 {
		t.Helper()
		v, ok := s.Lookup(metric, inst)
		if !ok {
			t.Fatalf("missing %s", pointtest.Key(metric, inst))
		}
		return v
	}
	var maxConn float64
	if err := c.db.QueryRow("SELECT @@max_connections").Scan(&maxConn); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		check func() bool
	}{
		{"buffer pool used is total minus free", func() bool {
			return get("mysql.innodb.buffer_pool_used") == get("mysql.innodb.buffer_pool_total")-get("mysql.innodb.buffer_pool_free")
		}},
		{"buffer pool utilization is used over total", func() bool {
			return get("mysql.innodb.buffer_pool_utilization") == get("mysql.innodb.buffer_pool_used")/get("mysql.innodb.buffer_pool_total")
		}},
		{"the collector's own connection is counted", func() bool { return get("mysql.performance.threads_connected") >= 1 }},
		{"max_connections variable", func() bool { return get("mysql.variables.max_connections") == maxConn }},
		{"com_select rate counts the selects run in between", func() bool {
			return get("mysql.performance.com_select") >= selects/10.0
		}},
		{"questions rate at least the selects", func() bool { return get("mysql.performance.questions") >= selects/10.0 }},
		{"row lock gauge present", func() bool { return get("mysql.innodb.current_row_locks") >= 0 }},
		{"connections rate present", func() bool { return get("mysql.net.connections") >= 0 }},
		{"slow queries rate present", func() bool { return get("mysql.performance.slow_queries") >= 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.check() {
				t.Error("check failed")
			}
		})
	}
	if first.Has("mysql.performance.com_select") {
		t.Error("first collection emitted a rate without a previous sample")
	}
	if s.Has("mysql.replication.slave_running") {
		t.Error("a server that is not a replica got replication series")
	}
}

func TestEmitReplica(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  map[string]string
		want []pointtest.Expect
		none string
	}{
		{
			name: "MariaDB replica in sync",
			row:  map[string]string{"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "0", "Connection_name": ""},
			want: []pointtest.Expect{
				{Metric: "mysql.replication.slave_running", Tags: map[string]string{}, Value: 1},
				{Metric: "mysql.replication.seconds_behind_master", Tags: map[string]string{}, Value: 0},
			},
		},
		{
			name: "MySQL 8 replica lagging on a named channel",
			row:  map[string]string{"Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes", "Seconds_Behind_Source": "42", "Channel_Name": "east"},
			want: []pointtest.Expect{
				{Metric: "mysql.replication.slave_running", Tags: map[string]string{"channel": "east"}, Value: 1},
				{Metric: "mysql.replication.seconds_behind_master", Tags: map[string]string{"channel": "east"}, Value: 42},
			},
		},
		{
			name: "SQL thread stopped: not running and no lag",
			row:  map[string]string{"Slave_IO_Running": "Yes", "Slave_SQL_Running": "No"},
			want: []pointtest.Expect{
				{Metric: "mysql.replication.slave_running", Tags: map[string]string{}, Value: 0},
				{Metric: "mysql.replication.io_running", Tags: map[string]string{}, Value: 1},
				{Metric: "mysql.replication.sql_running", Tags: map[string]string{}, Value: 0},
			},
			none: "mysql.replication.seconds_behind_master",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &pointtest.Sink{}
			emitReplica(points.Writer{Emit: s.Emit, Time: time.Now()}, tc.row)
			pointtest.Check(t, s, tc.want)
			if tc.none != "" && s.Has(tc.none) {
				t.Errorf("unexpected %s", tc.none)
			}
		})
	}
}

func TestCollectUnreachableServerNamesIt(t *testing.T) {
	c, err := New(Config{DSN: "root@tcp(127.0.0.1:1)/?timeout=1s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Collect(context.Background(), (&pointtest.Sink{}).Emit)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("err = %v, want one naming 127.0.0.1:1", err)
	}
}

func TestNewRejectsBadDSN(t *testing.T) {
	_, err := New(Config{DSN: "not a dsn"})
	if err == nil || !strings.Contains(err.Error(), `"dsn"`) {
		t.Errorf("err = %v, want one naming the dsn option", err)
	}
}
