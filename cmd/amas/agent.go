package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/collector/agent"
	"github.com/amas-eye/amas/collector/builtin/registry"
)

// agentSetting is a setting of `amas agent` that is a flag, an AMAS_AGENT_*
// variable and a key of agent.yaml; apply writes it into the configuration.
type agentSetting struct {
	flag, usage string
	apply       func(c *agent.Config, v string)
}

func agentSettings() []agentSetting {
	return []agentSetting{
		{"server", "base URL of amas serve, e.g. https://amas.example.com:8080 (agent.yaml: server)", func(c *agent.Config, v string) { c.Server = v }},
		{"token", "API token with the ingest role (agent.yaml: token)", func(c *agent.Config, v string) { c.Token = v }},
		{"hostname", "host tag of every point; default: the system's host name (agent.yaml: hostname)", func(c *agent.Config, v string) { c.Hostname = v }},
		{"collectors-dir", "directory of script collectors in <interval>/ sub-directories (agent.yaml: collectors_dir)", func(c *agent.Config, v string) { c.CollectorsDir = v }},
		{"spool-dir", "directory of the on-disk spool (agent.yaml: spool.dir)", func(c *agent.Config, v string) { c.Spool.Dir = v }},
		{"management-addr", "listen address of the management API, empty disables it (agent.yaml: management.listen)", func(c *agent.Config, v string) { c.Management.Listen = v }},
	}
}

func agentEnv(flagName string) string {
	return "AMAS_AGENT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// agentCmd is `amas agent`. Precedence: flag, then AMAS_AGENT_* variable, then
// agent.yaml, then the default.
func agentCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "agent.yaml (env "+agentEnv("config")+")")
	once := fs.Bool("once", false, "run every collector once, ship, and exit")
	dryRun := fs.Bool("dry-run", false, "with --once: print the put lines that would be sent instead of sending them")
	listCollectors := fs.Bool("list-collectors", false, "print the kinds of built-in collector agent.yaml can name, and exit")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (env "+agentEnv("log-level")+")")
	logFormat := fs.String("log-format", "text", "text or json (env "+agentEnv("log-format")+")")
	settings := agentSettings()
	values := make([]*string, len(settings))
	for i, s := range settings {
		values[i] = fs.String(s.flag, "", s.usage+" (env "+agentEnv(s.flag)+")")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("agent: unexpected argument %q (settings are flags, e.g. --config agent.yaml)", fs.Arg(0))
	}
	if *listCollectors {
		for _, kind := range registry.Kinds() {
			fmt.Fprintln(stdout, kind)
		}
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	pick := func(name, flagValue string) string {
		if given[name] {
			return flagValue
		}
		return os.Getenv(agentEnv(name))
	}
	level, format := orDefault(pick("log-level", *logLevel), "info"), orDefault(pick("log-format", *logFormat), "text")
	log := newLogger(stderr, level, format)
	file := pick("config", *configFile)

	load := func() (agent.Config, error) {
		cfg := agent.DefaultConfig()
		if file != "" {
			var err error
			if cfg, err = agent.LoadFile(file); err != nil {
				return cfg, err
			}
		}
		for i, s := range settings {
			if v := pick(s.flag, *values[i]); v != "" || given[s.flag] {
				s.apply(&cfg, v)
			}
		}
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	dry := *dryRun
	if err := cfg.Validate(dry); err != nil {
		return fmt.Errorf("agent configuration:\n%w", err)
	}
	// SIGHUP re-reads the configuration, as POST /reload does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	deps := agent.Deps{Factory: registry.Build, Version: app.Version, Log: log, Load: load, ReloadOn: hup}
	if dry {
		return agent.DryRun(ctx, cfg, deps, stdout)
	}
	a, err := agent.New(cfg, deps)
	if err != nil {
		return err
	}
	if *once {
		return a.CollectOnce(ctx)
	}
	return a.Run(ctx)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
