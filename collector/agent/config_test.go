package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadFile(t *testing.T) {
	for _, tc := range []struct {
		name       string
		yaml       string
		collectors []string
		wantErr    string
		check      func(t *testing.T, c Config)
	}{
		{name: "an empty file runs the default collectors", yaml: "", collectors: []string{"alive", "os"}},
		{name: "no collectors section runs the defaults", yaml: "server: http://s:8080\n", collectors: []string{"alive", "os"}},
		{name: "a collectors section replaces the defaults", yaml: "collectors:\n  mysql: {}\n", collectors: []string{"mysql"}},
		{name: "an empty collectors map runs none", yaml: "collectors: {}\n", collectors: []string{}},
		{name: "settings left out keep their defaults", yaml: "shipping:\n  batch_size: 10\n", collectors: []string{"alive", "os"},
			check: func(t *testing.T, c Config) {
				if c.Shipping.BatchSize != 10 || c.Shipping.FlushInterval != DefaultFlushInterval || c.Spool.MaxBytes != DefaultSpoolMaxBytes {
					t.Errorf("shipping %+v spool %+v", c.Shipping, c.Spool)
				}
			}},
		{name: "durations", yaml: "collectors:\n  os:\n    interval: 1m\n", collectors: []string{"os"},
			check: func(t *testing.T, c Config) {
				if c.Collectors["os"].Interval != time.Minute {
					t.Errorf("interval %s", c.Collectors["os"].Interval)
				}
			}},
		{name: "a misspelt setting is an error", yaml: "shiping:\n  batch_size: 10\n", wantErr: "field shiping not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadFile(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadFile error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sortedKeys(cfg.Collectors); !slices.Equal(got, tc.collectors) {
				t.Errorf("collectors %v, want %v", got, tc.collectors)
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"server required", func(c *Config) { c.Server = "" }, "server: required"},
		{"server must be a URL", func(c *Config) { c.Server = "amas:8080" }, "server: \"amas:8080\" is not"},
		{"token required", func(c *Config) { c.Token = "" }, "token: required"},
		{"host tag in tags", func(c *Config) { c.Tags = map[string]string{"host": "x"} }, "tags: host=x"},
		{"batch size", func(c *Config) { c.Shipping.BatchSize = 0 }, "shipping.batch_size: must be positive"},
		{"heartbeat too short", func(c *Config) { c.Heartbeat.Interval = time.Millisecond }, "heartbeat.interval"},
		{"management address", func(c *Config) { c.Management.Listen = "8001" }, "management.listen"},
		{"collector timeout past its interval", func(c *Config) {
			c.Collectors = map[string]CollectorConfig{"os": {Interval: time.Second, Timeout: time.Minute}}
		}, "collectors.os.timeout"},
		{"collector timeout past the default interval", func(c *Config) {
			c.Collectors = map[string]CollectorConfig{"mysql": {Timeout: 20 * time.Second}}
		}, "collectors.mysql.timeout: 20s is longer than the interval 15s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Server, cfg.Token = "http://amas:8080", "secret"
			if err := cfg.Validate(false); err != nil {
				t.Fatalf("the base configuration is invalid: %v", err)
			}
			tc.change(&cfg)
			if err := cfg.Validate(false); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
