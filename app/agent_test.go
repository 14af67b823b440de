package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector/agent"
	"github.com/amas-eye/amas/collector/builtin/registry"
)

// TestAgentShipsToServer runs a real agent against a real server: its points
// can be queried and its heartbeat makes it an up agent in the registry.
func TestAgentShipsToServer(t *testing.T) {
	s := startServer(t)
	cfg := agent.DefaultConfig()
	cfg.Server, cfg.Token, cfg.Hostname = s.url, s.Bootstrap.IngestToken, "e2e-host"
	cfg.Spool.Dir = t.TempDir()
	cfg.Management.Listen = ""
	cfg.Heartbeat.Interval = time.Second
	cfg.Shipping.FlushInterval = 100 * time.Millisecond
	cfg.Collectors = map[string]agent.CollectorConfig{
		"alive": {Interval: time.Second},
		"os":    {Interval: time.Second},
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Deps{Factory: registry.Build, Version: "e2e", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	now := time.Now().UTC()
	deadline := time.Now().Add(20 * time.Second)
	for {
		alive := s.series(t, "sys.machine.alive", now.Add(-time.Minute), now.Add(time.Minute), "1s")
		cpu := s.graphql(t, s.viewerToken, `{ tagValues(metric: "proc.stat.cpu", key: "host") }`, nil)
		r := s.graphql(t, s.viewerToken, `{ agents { host version up collectors { name up } } }`, nil)
		var reg struct {
			Agents []struct {
				Host, Version string
				Up            bool
				Collectors    []struct {
					Name string
					Up   bool
				}
			}
		}
		_ = json.Unmarshal(r.Data, &reg)
		ok := len(alive.Series) == 1 && alive.Series[0].Tags[0].Value == "e2e-host" &&
			strings.Contains(string(cpu.Data), "e2e-host") &&
			len(reg.Agents) == 1 && reg.Agents[0].Up && reg.Agents[0].Version == "e2e" && len(reg.Agents[0].Collectors) == 2
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: alive %+v, cpu hosts %s, agents %s", alive, cpu.Data, r.Data)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
