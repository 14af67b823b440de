package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/amas-eye/amas/store"
)

// HeartbeatPath is where agents post their heartbeat.
const HeartbeatPath = "/api/agent/heartbeat"

// Heartbeat is the JSON body an agent posts to HeartbeatPath.
type Heartbeat struct {
	Host            string                 `json:"host"`
	IP              string                 `json:"ip"`
	Version         string                 `json:"version"`
	OS              string                 `json:"os"`
	Collectors      []store.AgentCollector `json:"collectors"`
	SpoolBytes      int64                  `json:"spoolBytes"`
	DroppedPoints   int64                  `json:"droppedPoints"`
	IntervalSeconds int                    `json:"intervalSeconds"`
}

// HeartbeatStore keeps the latest heartbeat of each agent.
type HeartbeatStore interface {
	RecordHeartbeat(ctx context.Context, a store.Agent) error
}

const (
	defaultHeartbeatInterval = 30 * time.Second
	maxHeartbeatBytes        = 1 << 20
	maxHeartbeatCollectors   = 1000
	maxHeartbeatText         = 1024
)

// NewHeartbeatHandler records agent heartbeats. The receive time is the server's,
// so an agent with a wrong clock is still judged up or down correctly.
func NewHeartbeatHandler(st HeartbeatStore, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		var hb Heartbeat
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxHeartbeatBytes))
		if err := dec.Decode(&hb); err != nil {
			http.Error(w, "heartbeat is not valid JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		agent, err := hb.agent(now())
		if err != nil {
			http.Error(w, "heartbeat: "+err.Error(), http.StatusBadRequest)
			return
		}
		if agent.IP == "" {
			agent.IP, _, _ = net.SplitHostPort(r.RemoteAddr)
		}
		if err := st.RecordHeartbeat(r.Context(), agent); err != nil {
			log.Error("record heartbeat", "host", agent.Host, "err", err)
			http.Error(w, "could not record the heartbeat, retry later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (hb Heartbeat) agent(now time.Time) (store.Agent, error) {
	if !ValidName(hb.Host) || len(hb.Host) > 255 {
		return store.Agent{}, fmt.Errorf("host %q is not a valid host name", hb.Host)
	}
	if len(hb.Collectors) > maxHeartbeatCollectors {
		return store.Agent{}, fmt.Errorf("%d collectors: at most %d", len(hb.Collectors), maxHeartbeatCollectors)
	}
	for _, f := range []struct{ name, v string }{{"ip", hb.IP}, {"version", hb.Version}, {"os", hb.OS}} {
		if len(f.v) > maxHeartbeatText {
			return store.Agent{}, fmt.Errorf("%s is longer than %d bytes", f.name, maxHeartbeatText)
		}
	}
	interval := defaultHeartbeatInterval
	if hb.IntervalSeconds != 0 {
		if hb.IntervalSeconds < 1 || hb.IntervalSeconds > 3600 {
			return store.Agent{}, fmt.Errorf("intervalSeconds %d is outside 1..3600", hb.IntervalSeconds)
		}
		interval = time.Duration(hb.IntervalSeconds) * time.Second
	}
	for i := range hb.Collectors {
		if len(hb.Collectors[i].LastError) > maxHeartbeatText {
			hb.Collectors[i].LastError = hb.Collectors[i].LastError[:maxHeartbeatText]
		}
	}
	return store.Agent{
		Host: hb.Host, IP: hb.IP, Version: hb.Version, OS: hb.OS, Collectors: hb.Collectors,
		SpoolBytes: hb.SpoolBytes, DroppedPoints: hb.DroppedPoints, HeartbeatInterval: interval, LastSeen: now,
	}, nil
}
