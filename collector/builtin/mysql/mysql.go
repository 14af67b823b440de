// Package mysql is the built-in MySQL/MariaDB collector: SHOW GLOBAL STATUS,
// SHOW GLOBAL VARIABLES and the replica status, mapped to the seed's mysql.*
// catalogue. The seed documents most status counters as rates (per second),
// so those are emitted as rates from the second collection on. The InnoDB
// mutex rates come from SHOW ENGINE INNODB STATUS (MySQL; MariaDB 10.6+ no
// longer reports them), and user_time/kernel_time from the server process's
// /proc entry when the agent runs on the database host.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
	"github.com/amas-eye/amas/collector/builtin/internal/rate"
)

// Config is the `mysql` section of agent.yaml.
type Config struct {
	// DSN is a go-sql-driver/mysql data source name,
	// user:password@tcp(host:port)/.
	DSN string `yaml:"dsn"`
}

// DefaultConfig returns the defaults documented in collector/examples/agent.yaml.
func DefaultConfig() Config {
	return Config{DSN: "root@tcp(127.0.0.1:3306)/"}
}

// Collector reads one MySQL or MariaDB server.
type Collector struct {
	db       *sql.DB
	instance string
	now      func() time.Time
	rates    *rate.Tracker
}

// New validates cfg and prepares a connection pool (it connects lazily, at the
// first collection, so an agent starts even when the server is down).
func New(cfg Config) (*Collector, error) {
	dsn, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("mysql: option \"dsn\": %w", err)
	}
	if dsn.Timeout == 0 {
		dsn.Timeout = 5 * time.Second
	}
	connector, err := mysql.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: option \"dsn\": %w", err)
	}
	db := sql.OpenDB(connector)
	// One connection is enough for a few queries per interval and keeps the
	// agent's footprint on the monitored server minimal.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(10 * time.Minute)
	return &Collector{db: db, instance: dsn.Addr, now: time.Now, rates: rate.New()}, nil
}

// Name implements collector.Collector.
func (c *Collector) Name() string { return "mysql" }

// Close releases the connection pool.
func (c *Collector) Close() error { return c.db.Close() }

// Collect implements collector.Collector.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	status, err := c.keyValues(ctx, "SHOW GLOBAL STATUS")
	if err != nil {
		return err
	}
	vars, err := c.keyValues(ctx, "SHOW GLOBAL VARIABLES")
	if err != nil {
		return err
	}
	c.emitStatus(w, status)
	emitVariables(w, status, vars)
	c.collectCPU(ctx, w, "/proc")
	// Without the PROCESS privilege the engine status is refused; the rest
	// still counts.
	err = errors.Join(c.collectMutexes(ctx, w), c.collectReplica(ctx, w))
	c.rates.Prune()
	return err
}

// keyValues runs a SHOW statement with Variable_name/Value columns and keeps
// the numeric values (ON/OFF become 1/0), keyed by lower-case name.
func (c *Collector) keyValues(ctx context.Context, query string) (map[string]float64, error) {
	rows, err := c.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
	}
	defer rows.Close()
	out := make(map[string]float64)
	for rows.Next() {
		var name string
		var value sql.NullString
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
		}
		if v, ok := number(value.String); ok {
			out[strings.ToLower(name)] = v
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
	}
	return out, nil
}

func number(s string) (float64, bool) {
	switch strings.ToUpper(s) {
	case "ON", "YES":
		return 1, true
	case "OFF", "NO":
		return 0, true
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// gauges are status variables that are current levels, emitted as they are.
var gauges = map[string]string{
	"innodb_row_lock_current_waits":  "mysql.innodb.current_row_locks",
	"max_used_connections":           "mysql.net.max_connections",
	"open_files":                     "mysql.performance.open_files",
	"open_tables":                    "mysql.performance.open_tables",
	"threads_connected":              "mysql.performance.threads_connected",
	"threads_running":                "mysql.performance.threads_running",
	"threads_cached":                 "mysql.performance.threads_cached",
	"table_locks_waited":             "mysql.performance.table_locks_waited",
	"innodb_buffer_pool_pages_dirty": "mysql.innodb.buffer_pool_dirty",
}

// rates are status counters the seed documents per second.
var rates = map[string]string{
	"innodb_data_reads":       "mysql.innodb.data_reads",
	"innodb_data_writes":      "mysql.innodb.data_writes",
	"innodb_os_log_fsyncs":    "mysql.innodb.os_log_fsyncs",
	"innodb_row_lock_time":    "mysql.innodb.row_lock_time",
	"innodb_row_lock_waits":   "mysql.innodb.row_lock_waits",
	"connections":             "mysql.net.connections",
	"aborted_connects":        "mysql.net.aborted_connects",
	"aborted_clients":         "mysql.net.aborted_clients",
	"com_delete":              "mysql.performance.com_delete",
	"com_delete_multi":        "mysql.performance.com_delete_multi",
	"com_insert":              "mysql.performance.com_insert",
	"com_insert_select":       "mysql.performance.com_insert_select",
	"com_replace_select":      "mysql.performance.com_replace_select",
	"com_select":              "mysql.performance.com_select",
	"com_update":              "mysql.performance.com_update",
	"com_update_multi":        "mysql.performance.com_update_multi",
	"com_lock_tables":         "mysql.performance.lock_table",
	"created_tmp_disk_tables": "mysql.performance.created_tmp_disk_tables",
	"created_tmp_files":       "mysql.performance.created_tmp_files",
	"created_tmp_tables":      "mysql.performance.created_tmp_tables",
	"qcache_hits":             "mysql.performance.qcache_hits",
	"queries":                 "mysql.performance.queries",
	"questions":               "mysql.performance.questions",
	"slow_queries":            "mysql.performance.slow_queries",
	"bytes_received":          "mysql.net.bytes_received",
	"bytes_sent":              "mysql.net.bytes_sent",
}

func (c *Collector) emitStatus(w points.Writer, status map[string]float64) {
	for name, metric := range gauges {
		if v, ok := status[name]; ok {
			w.Add(metric, v)
		}
	}
	for name, metric := range rates {
		v, ok := status[name]
		if !ok {
			continue
		}
		if r, ok := c.rates.Rate(name, v, w.Time); ok {
			w.Add(metric, r)
		}
	}
	total, okTotal := status["innodb_buffer_pool_pages_total"]
	free, okFree := status["innodb_buffer_pool_pages_free"]
	if okTotal && okFree {
		w.Add("mysql.innodb.buffer_pool_total", total)
		w.Add("mysql.innodb.buffer_pool_free", free)
		w.Add("mysql.innodb.buffer_pool_used", total-free)
		if total > 0 {
			w.Add("mysql.innodb.buffer_pool_utilization", (total-free)/total)
		}
	}
}

// emitVariables reports the limits the status values are read against, and
// the key cache utilization, which needs both.
func emitVariables(w points.Writer, status, vars map[string]float64) {
	for _, name := range []string{"max_connections", "innodb_buffer_pool_size", "key_buffer_size", "slow_query_log", "read_only"} {
		if v, ok := vars[name]; ok {
			w.Add("mysql.variables."+name, v)
		}
	}
	size, block := vars["key_buffer_size"], vars["key_cache_block_size"]
	if unused, ok := status["key_blocks_unused"]; ok && size > 0 && block > 0 {
		w.Add("mysql.performance.key_cache_utilization", 1-unused*block/size)
	}
}

// collectReplica reads SHOW REPLICA STATUS (MySQL 8.0.22+, MariaDB 10.5+)
// and falls back to SHOW SLAVE STATUS on older servers. A server that is not
// a replica returns no row and gets no replication series.
func (c *Collector) collectReplica(ctx context.Context, w points.Writer) error {
	rows, err := c.replicaRows(ctx, "SHOW REPLICA STATUS")
	if err != nil {
		var rerr error
		if rows, rerr = c.replicaRows(ctx, "SHOW SLAVE STATUS"); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	for _, row := range rows {
		emitReplica(w, row)
	}
	return nil
}

func (c *Collector) replicaRows(ctx context.Context, query string) ([]map[string]string, error) {
	rows, err := c.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
	}
	var out []map[string]string
	for rows.Next() {
		values := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
		}
		row := make(map[string]string, len(cols))
		for i, col := range cols {
			if values[i].Valid {
				row[col] = values[i].String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysql %s: %s: %w", c.instance, query, err)
	}
	return out, nil
}

// emitReplica maps one replica status row. MySQL 8 renamed the columns from
// Slave/Master to Replica/Source, so both spellings are read.
// seconds_behind_master is NULL while the SQL thread is stopped; no lag is
// reported then, rather than a misleading 0.
func emitReplica(w points.Writer, row map[string]string) {
	if ch := first(row, "Channel_Name", "Connection_name"); ch != "" {
		w = w.With("channel", ch)
	}
	io := first(row, "Replica_IO_Running", "Slave_IO_Running")
	sqlThread := first(row, "Replica_SQL_Running", "Slave_SQL_Running")
	running := 0.0
	if io == "Yes" && sqlThread == "Yes" {
		running = 1
	}
	w.Add("mysql.replication.slave_running", running)
	w.Add("mysql.replication.io_running", yes(io))
	w.Add("mysql.replication.sql_running", yes(sqlThread))
	if lag, err := strconv.ParseFloat(first(row, "Seconds_Behind_Source", "Seconds_Behind_Master"), 64); err == nil {
		w.Add("mysql.replication.seconds_behind_master", lag)
	}
}

func first(row map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := row[k]; ok {
			return v
		}
	}
	return ""
}

func yes(s string) float64 {
	if s == "Yes" {
		return 1
	}
	return 0
}
