package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AgentCollector is one collector as an agent reported it.
type AgentCollector struct {
	Name      string    `json:"name"`
	Up        bool      `json:"up"`
	LastError string    `json:"lastError,omitempty"`
	LastRun   time.Time `json:"lastRun,omitempty"`
}

// Agent is the latest heartbeat of one host's agent.
type Agent struct {
	Host              string
	IP                string
	Version           string
	OS                string
	Collectors        []AgentCollector
	SpoolBytes        int64
	DroppedPoints     int64
	HeartbeatInterval time.Duration
	FirstSeen         time.Time
	LastSeen          time.Time
}

// MissedHeartbeats is how many heartbeats an agent may miss before it counts as down.
const MissedHeartbeats = 3

// Up reports whether the agent has sent a heartbeat within MissedHeartbeats intervals.
func (a Agent) Up(now time.Time) bool {
	return now.Sub(a.LastSeen) <= MissedHeartbeats*a.HeartbeatInterval
}

const upsertAgent = `
INSERT INTO agents (host, ip, version, os, collectors, spool_bytes, dropped_points, heartbeat_interval, last_seen)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (host) DO UPDATE SET
    ip = EXCLUDED.ip, version = EXCLUDED.version, os = EXCLUDED.os, collectors = EXCLUDED.collectors,
    spool_bytes = EXCLUDED.spool_bytes, dropped_points = EXCLUDED.dropped_points,
    heartbeat_interval = EXCLUDED.heartbeat_interval, last_seen = EXCLUDED.last_seen`

// RecordHeartbeat stores an agent's heartbeat, received at a.LastSeen.
func (s *Store) RecordHeartbeat(ctx context.Context, a Agent) error {
	collectors, err := json.Marshal(a.Collectors)
	if err != nil {
		return fmt.Errorf("encode collectors of %s: %w", a.Host, err)
	}
	_, err = s.pool.Exec(ctx, upsertAgent, a.Host, a.IP, a.Version, a.OS, collectors,
		a.SpoolBytes, a.DroppedPoints, a.HeartbeatInterval, a.LastSeen)
	if err != nil {
		return fmt.Errorf("record heartbeat of %s: %w", a.Host, err)
	}
	return nil
}

const selectAgents = `
SELECT host, ip, version, os, collectors, spool_bytes, dropped_points, heartbeat_interval, first_seen, last_seen
FROM agents ORDER BY host`

// Agents lists every agent that ever sent a heartbeat.
func (s *Store) Agents(ctx context.Context) ([]Agent, error) {
	rows, err := s.pool.Query(ctx, selectAgents)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		var a Agent
		if err := rows.Scan(&a.Host, &a.IP, &a.Version, &a.OS, &a.Collectors, &a.SpoolBytes, &a.DroppedPoints,
			&a.HeartbeatInterval, &a.FirstSeen, &a.LastSeen); err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
