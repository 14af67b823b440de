// Package config declares every setting of `amas serve` once: its flag, its
// AMAS_* environment variable, its YAML key and its default. Precedence: a flag
// given on the command line, then the environment, then the YAML file named by
// --config, then the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Server is the configuration of `amas serve` (and of the commands that reach the
// same database).
type Server struct {
	ConfigFile  string
	DatabaseURL string
	DataDir     string
	NoMigrate   bool
	Roles       []string

	HTTPAddr        string
	PutAddr         string
	OTLPGRPCAddr    string
	OTLPHTTPAddr    string
	ZipkinAddr      string
	PutTrustedCIDRs []netip.Prefix

	QueueSize       int
	BatchSize       int
	Writers         int
	MaxBodyBytes    int64
	MaxLineBytes    int
	MaxTagsPerPoint int

	RetentionRaw time.Duration
	Retention1m  time.Duration
	Retention1h  time.Duration

	RetentionSpans    time.Duration
	SpanQueueSize     int
	TracesREDInterval time.Duration

	SessionTTL    time.Duration
	CookieSecure  bool
	QueryTimeout  time.Duration
	MaxPoints     int
	MaxComplexity int
	ShutdownGrace time.Duration

	// ExternalURL is this Amas's address as users reach it, in notifications.
	ExternalURL string
	// SecretKeyFile holds the key that seals notification channel secrets;
	// PreviousSecretKeyFiles the keys they may still be sealed with (rotation).
	SecretKeyFile          string
	PreviousSecretKeyFiles []string

	LogLevel  string
	LogFormat string
}

// AllRoles are the parts of `serve` that --roles can switch on.
var AllRoles = []string{"api", "ingest", "alert", "ml", "rollup"}

// Setting is one documented configuration value.
type Setting struct {
	Name    string // flag name; the YAML key is the same
	Env     string
	Default string
	Usage   string
}

// Flags registers every server setting on fs, writing into c, and returns the
// list for documentation.
func (c *Server) Flags(fs *flag.FlagSet) []Setting {
	var out []Setting
	add := func(name, def, usage string, v flag.Value) {
		if err := v.Set(def); err != nil {
			panic(fmt.Sprintf("default of --%s: %v", name, err))
		}
		fs.Var(v, name, usage)
		out = append(out, Setting{Name: name, Env: EnvName(name), Default: def, Usage: usage})
	}
	add("config", "", "YAML file with settings (keys are the flag names)", (*stringValue)(&c.ConfigFile))
	add("database-url", "", "PostgreSQL URL; empty runs a private PostgreSQL under --data-dir", (*stringValue)(&c.DatabaseURL))
	add("data-dir", "./data", "directory of the embedded PostgreSQL, used when --database-url is empty", (*stringValue)(&c.DataDir))
	add("no-migrate", "false", "do not apply pending migrations at start", (*boolValue)(&c.NoMigrate))
	add("roles", strings.Join(AllRoles, ","), "comma-separated roles this process runs: "+strings.Join(AllRoles, ", "), (*listValue)(&c.Roles))

	add("http-addr", ":8080", "HTTP listener: web app, GraphQL, /api/put, /healthz, /readyz, /metrics", (*stringValue)(&c.HTTPAddr))
	add("put-addr", ":4242", "OpenTSDB telnet-style put listener (empty disables it)", (*stringValue)(&c.PutAddr))
	add("otlp-grpc-addr", ":4317", "OTLP gRPC listener (empty disables it)", (*stringValue)(&c.OTLPGRPCAddr))
	add("otlp-http-addr", ":4318", "OTLP HTTP listener (empty disables it)", (*stringValue)(&c.OTLPHTTPAddr))
	add("zipkin-addr", "", "Zipkin v2 listener (POST /api/v2/spans, e.g. :9411); empty: Zipkin spans go to --otlp-http-addr only", (*stringValue)(&c.ZipkinAddr))
	add("put-trusted-cidrs", "127.0.0.0/8,::1/128", "networks whose telnet put connections need no auth line", (*prefixListValue)(&c.PutTrustedCIDRs))

	add("ingest-queue-size", "500000", "points accepted but not yet committed; beyond it clients get back-pressure", (*intValue)(&c.QueueSize))
	add("ingest-batch-size", "20000", "most points written by one COPY", (*intValue)(&c.BatchSize))
	add("ingest-writers", "2", "concurrent COPY transactions", (*intValue)(&c.Writers))
	add("ingest-max-body-bytes", "33554432", "largest /api/put request body, after gzip decompression", (*int64Value)(&c.MaxBodyBytes))
	add("ingest-max-line-bytes", "4096", "longest telnet put line", (*intValue)(&c.MaxLineBytes))
	add("ingest-max-tags", "32", "most tags on one point", (*intValue)(&c.MaxTagsPerPoint))

	add("retention-raw", "720h", "how long raw samples are kept (whole days are dropped)", (*durationValue)(&c.RetentionRaw))
	add("retention-1m", "2160h", "how long 1-minute rollups are kept", (*durationValue)(&c.Retention1m))
	add("retention-1h", "17520h", "how long 1-hour rollups are kept", (*durationValue)(&c.Retention1h))
	add("retention-spans", "168h", "how long spans are kept (whole days are dropped)", (*durationValue)(&c.RetentionSpans))
	add("otlp-span-queue-size", "200000", "spans accepted but not yet committed; beyond it OTLP clients get back-pressure", (*intValue)(&c.SpanQueueSize))
	add("traces-red-interval", "10s", "width of one point of the span-derived RED metrics (traces.span.*)", (*durationValue)(&c.TracesREDInterval))

	add("session-ttl", "168h", "how long a login session lasts", (*durationValue)(&c.SessionTTL))
	add("cookie-secure", "false", "mark the session cookie Secure (set behind HTTPS)", (*boolValue)(&c.CookieSecure))
	add("query-timeout", "30s", "longest a GraphQL operation may run", (*durationValue)(&c.QueryTimeout))
	add("query-max-points", "1000000", "most points one series query may return", (*intValue)(&c.MaxPoints))
	add("query-max-complexity", "5000", "GraphQL complexity limit per operation", (*intValue)(&c.MaxComplexity))
	add("shutdown-grace", "30s", "how long SIGTERM waits for accepted points to be committed", (*durationValue)(&c.ShutdownGrace))

	add("secret-key-file", "", "file holding the key (16+ characters, e.g. from openssl rand -base64 32) that seals notification channel secrets in the database; every replica needs the same one", (*stringValue)(&c.SecretKeyFile))
	add("previous-secret-key-files", "", "comma-separated files of former secret keys: what they sealed is read, and sealed again with --secret-key-file at start", (*listValue)(&c.PreviousSecretKeyFiles))
	add("external-url", "", "address users reach this Amas at, linked from notifications (the webhook's externalURL)", (*stringValue)(&c.ExternalURL))

	add("log-level", "info", "debug, info, warn or error", (*stringValue)(&c.LogLevel))
	add("log-format", "text", "text or json", (*stringValue)(&c.LogFormat))
	return out
}

// EnvName is the environment variable of a setting: AMAS_ and the flag name in
// upper case with '-' as '_'.
func EnvName(flagName string) string {
	return "AMAS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse fills the flags of fs from args, then the environment, then the YAML file
// named by the "config" flag, for every setting not given on the command line.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	// The file's own name may come from the environment.
	if v := getenv(EnvName("config")); v != "" && !given["config"] && fs.Lookup("config") != nil {
		_ = fs.Set("config", v)
		given["config"] = true
	}
	fromFile := map[string]string{}
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		var err error
		if fromFile, err = readYAML(f.Value.String(), fs); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
			return
		}
		if v, ok := fromFile[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s in the config file: %q: %w", f.Name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func readYAML(path string, fs *flag.FlagSet) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	var raw map[string]any
	if err := yaml.NewDecoder(f).Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		if fs.Lookup(k) == nil || k == "config" {
			unknown = append(unknown, k)
			continue
		}
		switch v := v.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file %s: unknown settings %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}

// Validate checks the settings together, naming the one that is wrong.
func (c *Server) Validate() error {
	var errs []error
	for _, r := range c.Roles {
		if !contains(AllRoles, r) {
			errs = append(errs, fmt.Errorf("--roles: unknown role %q (want %s)", r, strings.Join(AllRoles, ", ")))
		}
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("--roles: at least one role is needed"))
	}
	if len(c.PreviousSecretKeyFiles) > 0 && c.SecretKeyFile == "" {
		errs = append(errs, errors.New("--previous-secret-key-files needs --secret-key-file: the key to seal their secrets with again"))
	}
	if c.ExternalURL != "" && !strings.HasPrefix(c.ExternalURL, "http://") && !strings.HasPrefix(c.ExternalURL, "https://") {
		errs = append(errs, fmt.Errorf("--external-url %q: want an http:// or https:// address", c.ExternalURL))
	}
	positive := map[string]int64{
		"ingest-queue-size": int64(c.QueueSize), "ingest-batch-size": int64(c.BatchSize),
		"ingest-writers": int64(c.Writers), "ingest-max-body-bytes": c.MaxBodyBytes,
		"ingest-max-line-bytes": int64(c.MaxLineBytes), "ingest-max-tags": int64(c.MaxTagsPerPoint),
		"query-max-points": int64(c.MaxPoints), "query-max-complexity": int64(c.MaxComplexity),
		"otlp-span-queue-size": int64(c.SpanQueueSize), "traces-red-interval": int64(c.TracesREDInterval),
	}
	for name, v := range positive {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %d", name, v))
		}
	}
	if c.BatchSize > c.QueueSize {
		errs = append(errs, fmt.Errorf("--ingest-batch-size (%d) must not exceed --ingest-queue-size (%d)", c.BatchSize, c.QueueSize))
	}
	if c.RetentionRaw < 24*time.Hour {
		errs = append(errs, fmt.Errorf("--retention-raw must be at least 24h (raw samples are kept in daily partitions), got %s", c.RetentionRaw))
	}
	if c.Retention1m < c.RetentionRaw || c.Retention1h < c.Retention1m {
		errs = append(errs, errors.New("retention must not shrink with coarser data: --retention-raw <= --retention-1m <= --retention-1h"))
	}
	if c.RetentionSpans < 24*time.Hour {
		errs = append(errs, fmt.Errorf("--retention-spans must be at least 24h (spans are kept in daily partitions), got %s", c.RetentionSpans))
	}
	if !contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		errs = append(errs, fmt.Errorf("--log-level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if !contains([]string{"text", "json"}, c.LogFormat) {
		errs = append(errs, fmt.Errorf("--log-format: %q is not text or json", c.LogFormat))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// HasRole reports whether this process runs role.
func (c *Server) HasRole(role string) bool { return contains(c.Roles, role) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
