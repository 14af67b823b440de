package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting"
)

// HostResource is what a top-N list of hosts ranks by.
type HostResource string

const (
	ResourceCPU     HostResource = "CPU"     // cluster.cpu.usage, as a percentage
	ResourceMemory  HostResource = "MEMORY"  // mem.percent.used
	ResourceDisk    HostResource = "DISK"    // df.bytes.percentused, the fullest mount
	ResourceNetwork HostResource = "NETWORK" // cluster.net.dev.receive + transmit bytes/s, all interfaces but lo
)

// HostValue is one host's figure in a top-N list.
type HostValue struct {
	Host  string
	Value float64
}

// latestPerSeries is the host and newest sample since $2 of each series of the
// metrics $1 that has a host tag. $3 and $4 narrow the series by one tag
// (an empty key keeps all); lo is never counted as network traffic.
const latestPerSeries = `
SELECT s.tags->>'host' AS host, x.value
FROM series s
CROSS JOIN LATERAL (
    SELECT value FROM samples
    WHERE series_id = s.id AND time >= $2
    ORDER BY time DESC LIMIT 1) x
WHERE s.metric = ANY($1) AND s.tags ? 'host'
  AND ($3 = '' OR s.tags->>$3 = $4)
  AND coalesce(s.tags->>'interface', '') <> 'lo'`

// topHostsSQL ranks hosts by the combination (per host) of their series' newest values.
const topHostsSQL = `
SELECT host, %s(value) * $5 AS v FROM (` + latestPerSeries + `) latest
GROUP BY host ORDER BY v DESC, host LIMIT $6`

type resourceQuery struct {
	metrics  []string
	combine  string // SQL aggregate over a host's series
	tagKey   string // optional series filter
	tagValue string
	scale    float64
}

var resourceQueries = map[HostResource]resourceQuery{
	ResourceCPU:     {metrics: []string{"cluster.cpu.usage"}, combine: "avg", scale: 100},
	ResourceMemory:  {metrics: []string{"mem.percent.used"}, combine: "max", scale: 1},
	ResourceDisk:    {metrics: []string{"df.bytes.percentused"}, combine: "max", scale: 1},
	ResourceNetwork: {metrics: []string{"cluster.net.dev.receive", "cluster.net.dev.transmit"}, combine: "sum", tagKey: "type", tagValue: "bytes", scale: 1},
}

// TopHosts ranks hosts, highest first, by the newest values since `since` of the
// metric the resource names (as the OS collector sends them). Network sums the
// receive and transmit rates.
func (s *Store) TopHosts(ctx context.Context, res HostResource, since time.Time, limit int) ([]HostValue, error) {
	rq, ok := resourceQueries[res]
	if !ok {
		return nil, fmt.Errorf("%w: unknown host resource %q", ErrBadQuery, res)
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(topHostsSQL, rq.combine), rq.metrics, since, rq.tagKey, rq.tagValue, rq.scale, limit)
	if err != nil {
		return nil, fmt.Errorf("top hosts by %s: %w", res, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[HostValue])
	if err != nil {
		return nil, fmt.Errorf("top hosts by %s: %w", res, err)
	}
	return out, nil
}

// AlertingHosts lists the host labels of the firing alerts.
func (s *Store) AlertingHosts(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT labels->>'host' FROM alert_instances
WHERE state = 'firing' AND labels ? 'host' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("alerting hosts: %w", err)
	}
	hosts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("alerting hosts: %w", err)
	}
	return hosts, nil
}

// OpenAlertsBySeverity counts the firing alert instances per severity.
func (s *Store) OpenAlertsBySeverity(ctx context.Context) (map[alerting.Severity]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT severity, count(*) FROM alert_instances WHERE state = 'firing' GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("open alerts: %w", err)
	}
	defer rows.Close()
	out := map[alerting.Severity]int{}
	for rows.Next() {
		var sev string
		var n int
		if err := rows.Scan(&sev, &n); err != nil {
			return nil, fmt.Errorf("open alerts: %w", err)
		}
		out[alerting.Severity(sev)] = n
	}
	return out, rows.Err()
}

// AlertTrendBucket is one hour of the raised/resolved trend.
type AlertTrendBucket struct {
	Hour     time.Time
	Raised   int // transitions to firing
	Resolved int // transitions to resolved
	Critical int // of Raised, at critical severity
}

const alertTrendSQL = `
SELECT h.hour,
       count(a.id) FILTER (WHERE a.to_state = 'firing'),
       count(a.id) FILTER (WHERE a.to_state = 'resolved'),
       count(a.id) FILTER (WHERE a.to_state = 'firing' AND a.severity = 'critical')
FROM generate_series(date_trunc('hour', $1::timestamptz), $2::timestamptz - interval '1 microsecond', interval '1 hour') h(hour)
LEFT JOIN alert_history a ON a.at >= h.hour AND a.at < h.hour + interval '1 hour'
    AND a.at >= $1 AND a.at < $2 AND a.to_state IN ('firing', 'resolved')
GROUP BY h.hour ORDER BY h.hour`

// AlertTrend counts, per UTC hour of [from, to), the alerts raised and resolved;
// every hour is present, empty ones with zeros.
func (s *Store) AlertTrend(ctx context.Context, from, to time.Time) ([]AlertTrendBucket, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("%w: the trend's end %s is not after its start %s", ErrBadQuery, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if to.Sub(from) > 31*24*time.Hour {
		return nil, fmt.Errorf("%w: the trend covers at most 31 days", ErrBadQuery)
	}
	rows, err := s.pool.Query(ctx, alertTrendSQL, from, to)
	if err != nil {
		return nil, fmt.Errorf("alert trend: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[AlertTrendBucket])
	if err != nil {
		return nil, fmt.Errorf("alert trend: %w", err)
	}
	for i := range out {
		out[i].Hour = out[i].Hour.UTC()
	}
	return out, nil
}

// ruleWeightsSQL sums the weights of the enabled rules and of those firing now
// (any instance firing). A rule weighs as its most severe threshold: critical
// 3, warning 2, info 1.
const ruleWeightsSQL = `
WITH w AS (
    SELECT CASE WHEN r.spec->'thresholds' ? 'critical' THEN 3
                WHEN r.spec->'thresholds' ? 'warning' THEN 2 ELSE 1 END AS weight,
           EXISTS (SELECT 1 FROM alert_instances i WHERE i.rule_id = r.id AND i.state = 'firing') AS firing
    FROM alert_rules r
    WHERE r.enabled)
SELECT coalesce(sum(weight), 0), coalesce(sum(weight) FILTER (WHERE firing), 0) FROM w`

// RuleWeights returns the weight of all enabled rules and of the firing ones.
func (s *Store) RuleWeights(ctx context.Context) (total, firing float64, err error) {
	if err := s.pool.QueryRow(ctx, ruleWeightsSQL).Scan(&total, &firing); err != nil {
		return 0, 0, fmt.Errorf("rule weights: %w", err)
	}
	return total, firing, nil
}
