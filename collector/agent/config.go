package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/amas-eye/amas/ingest"
)

// Config is the whole agent.yaml. cmd/amas fills it from the file, then the
// AMAS_AGENT_* environment, then the flags; Validate runs once on the result.
type Config struct {
	Server        string            `yaml:"server"`         // base URL of `amas serve`
	Token         string            `yaml:"token"`          // API token with the ingest role
	Hostname      string            `yaml:"hostname"`       // the host tag; empty = os.Hostname()
	Tags          map[string]string `yaml:"tags"`           // added to every point that lacks the key
	CollectorsDir string            `yaml:"collectors_dir"` // script collectors; empty = none

	Spool      SpoolConfig      `yaml:"spool"`
	Shipping   ShippingConfig   `yaml:"shipping"`
	Heartbeat  HeartbeatConfig  `yaml:"heartbeat"`
	Management ManagementConfig `yaml:"management"`
	Scripts    ScriptsConfig    `yaml:"scripts"`

	// Collectors are the built-in collectors by name. The name is also the
	// kind unless Kind is set, so one kind can run twice (two MySQL servers).
	// Left out of agent.yaml, it is DefaultCollectors.
	Collectors map[string]CollectorConfig `yaml:"collectors"`
}

// SpoolConfig bounds the on-disk queue of batches.
type SpoolConfig struct {
	Dir      string `yaml:"dir"`
	MaxBytes int64  `yaml:"max_bytes"`
}

// ShippingConfig shapes the requests to /api/put.
type ShippingConfig struct {
	BatchSize     int           `yaml:"batch_size"`     // most points in one request
	FlushInterval time.Duration `yaml:"flush_interval"` // longest a point waits for its batch to fill
	Timeout       time.Duration `yaml:"timeout"`        // one request
	MaxBackoff    time.Duration `yaml:"max_backoff"`    // longest pause between retries
}

// HeartbeatConfig is the agent's report to the server's registry.
type HeartbeatConfig struct {
	Interval time.Duration `yaml:"interval"`
}

// ManagementConfig is the local management API.
type ManagementConfig struct {
	Listen string `yaml:"listen"` // empty disables it
}

// ScriptsConfig tunes the script collector runner.
type ScriptsConfig struct {
	RescanInterval time.Duration `yaml:"rescan_interval"` // how often the directory is re-read
	KillGrace      time.Duration `yaml:"kill_grace"`      // SIGTERM to SIGKILL
	MaxBackoff     time.Duration `yaml:"max_backoff"`     // longest pause before a crashed 0/ script restarts
}

// CollectorConfig is one built-in collector.
type CollectorConfig struct {
	Kind     string         `yaml:"kind"`
	Enabled  *bool          `yaml:"enabled"` // nil = true, so listing a collector turns it on
	Interval time.Duration  `yaml:"interval"`
	Timeout  time.Duration  `yaml:"timeout"` // 0 = the interval
	Options  map[string]any `yaml:"options"`
}

// Defaults of the settings agent.yaml may leave out.
const (
	DefaultSpoolMaxBytes     = 256 << 20
	DefaultBatchSize         = 5000
	DefaultFlushInterval     = 5 * time.Second
	DefaultShipTimeout       = 30 * time.Second
	DefaultShipMaxBackoff    = 2 * time.Minute
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultManagementListen  = "127.0.0.1:8001"
	DefaultCollectorInterval = 15 * time.Second
	DefaultRescanInterval    = 10 * time.Second
	DefaultKillGrace         = 5 * time.Second
	DefaultScriptMaxBackoff  = 5 * time.Minute
	DefaultSpoolDirName      = "amas-agent-spool"
	maxHeartbeatInterval     = time.Hour // the server refuses longer ones
)

// DefaultConfig is the configuration of an empty agent.yaml.
func DefaultConfig() Config {
	return Config{
		Collectors: DefaultCollectors(),
		Spool:      SpoolConfig{Dir: defaultSpoolDir(), MaxBytes: DefaultSpoolMaxBytes},
		Shipping: ShippingConfig{
			BatchSize: DefaultBatchSize, FlushInterval: DefaultFlushInterval,
			Timeout: DefaultShipTimeout, MaxBackoff: DefaultShipMaxBackoff,
		},
		Heartbeat:  HeartbeatConfig{Interval: DefaultHeartbeatInterval},
		Management: ManagementConfig{Listen: DefaultManagementListen},
		Scripts: ScriptsConfig{
			RescanInterval: DefaultRescanInterval, KillGrace: DefaultKillGrace, MaxBackoff: DefaultScriptMaxBackoff,
		},
	}
}

// DefaultCollectors run when agent.yaml has no collectors section: the host's
// own metrics and sys.machine.alive, which need no target.
func DefaultCollectors() map[string]CollectorConfig {
	return map[string]CollectorConfig{"os": {}, "alive": {}}
}

// defaultSpoolDir is /var/lib/amas/agent-spool for root (a system service) and a
// directory under the user's cache otherwise, so a trial run needs no root.
func defaultSpoolDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/amas/agent-spool"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return d + "/" + DefaultSpoolDirName
	}
	return os.TempDir() + "/" + DefaultSpoolDirName
}

// LoadFile reads agent.yaml over the defaults. Unknown keys are errors, so a
// misspelt setting is not silently ignored.
func LoadFile(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("agent config: %w", err)
	}
	// Decoding merges into a map, so the defaults must not be in it: a file
	// listing only mysql runs only mysql.
	cfg.Collectors = nil
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("agent config %s: %w", path, err)
	}
	if cfg.Collectors == nil {
		cfg.Collectors = DefaultCollectors()
	}
	return cfg, nil
}

// Validate checks the settings together; each error names its setting.
func (c *Config) Validate(dryRun bool) error {
	var errs []error
	if !dryRun {
		errs = append(errs, c.validateServer()...)
	}
	if c.Hostname != "" && !ingest.ValidName(c.Hostname) {
		errs = append(errs, fmt.Errorf("hostname: %q has characters a tag value cannot have", c.Hostname))
	}
	for _, k := range sortedKeys(c.Tags) {
		if !ingest.ValidName(k) || !ingest.ValidName(c.Tags[k]) || k == "host" {
			errs = append(errs, fmt.Errorf("tags: %s=%s is not a valid tag (host is set with hostname)", k, c.Tags[k]))
		}
	}
	errs = append(errs, c.validateNumbers()...)
	if l := c.Management.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			errs = append(errs, fmt.Errorf("management.listen: %q is not host:port: %w", l, err))
		}
	}
	if !dryRun && c.Spool.Dir == "" {
		errs = append(errs, errors.New("spool.dir: required"))
	}
	for _, name := range sortedKeys(c.Collectors) {
		errs = append(errs, c.Collectors[name].validate(name)...)
	}
	return errors.Join(errs...)
}

func (c *Config) validateServer() []error {
	var errs []error
	u, err := url.Parse(c.Server)
	switch {
	case c.Server == "":
		errs = append(errs, errors.New("server: required (--server or AMAS_AGENT_SERVER)"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("server: %q is not an http:// or https:// URL", c.Server))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token: required (--token or AMAS_AGENT_TOKEN)"))
	}
	return errs
}

func (c *Config) validateNumbers() []error {
	var errs []error
	positive := []struct {
		name string
		v    int64
	}{
		{"spool.max_bytes", c.Spool.MaxBytes},
		{"shipping.batch_size", int64(c.Shipping.BatchSize)},
		{"shipping.flush_interval", int64(c.Shipping.FlushInterval)},
		{"shipping.timeout", int64(c.Shipping.Timeout)},
		{"shipping.max_backoff", int64(c.Shipping.MaxBackoff)},
		{"scripts.rescan_interval", int64(c.Scripts.RescanInterval)},
		{"scripts.kill_grace", int64(c.Scripts.KillGrace)},
		{"scripts.max_backoff", int64(c.Scripts.MaxBackoff)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", p.name))
		}
	}
	if hb := c.Heartbeat.Interval; hb < time.Second || hb > maxHeartbeatInterval {
		errs = append(errs, fmt.Errorf("heartbeat.interval: %s is outside 1s..1h", hb))
	}
	return errs
}

func (cc CollectorConfig) validate(name string) []error {
	var errs []error
	if !ingest.ValidName(name) {
		errs = append(errs, fmt.Errorf("collectors.%s: the name must be a valid tag value", name))
	}
	if cc.Interval < 0 {
		errs = append(errs, fmt.Errorf("collectors.%s.interval: must not be negative", name))
	}
	if cc.Timeout < 0 {
		errs = append(errs, fmt.Errorf("collectors.%s.timeout: must not be negative", name))
	}
	// Against the resolved interval: a timeout of 20s with the default 15s
	// interval would let runs pile up just the same.
	if r := cc.resolved(name); cc.Timeout > 0 && r.Timeout > r.Interval {
		errs = append(errs, fmt.Errorf("collectors.%s.timeout: %s is longer than the interval %s", name, r.Timeout, r.Interval))
	}
	return errs
}

// resolved fills the collector's defaults: kind from the name, enabled, the
// interval, and a timeout equal to the interval.
func (cc CollectorConfig) resolved(name string) CollectorConfig {
	if cc.Kind == "" {
		cc.Kind = name
	}
	if cc.Enabled == nil {
		on := true
		cc.Enabled = &on
	}
	if cc.Interval == 0 {
		cc.Interval = DefaultCollectorInterval
	}
	if cc.Timeout == 0 {
		cc.Timeout = cc.Interval
	}
	return cc
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
