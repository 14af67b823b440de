package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, args []string, env map[string]string, yaml string) (*Server, error) {
	t.Helper()
	if yaml != "" {
		path := filepath.Join(t.TempDir(), "amas.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	var c Server
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Flags(fs)
	err := Parse(fs, args, func(k string) string { return env[k] })
	return &c, err
}

func TestPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{name: "default", want: ":8080"},
		{name: "yaml", yaml: "http-addr: ':7000'\n", want: ":7000"},
		{name: "env over yaml", yaml: "http-addr: ':7000'\n", env: map[string]string{"AMAS_HTTP_ADDR": ":7001"}, want: ":7001"},
		{name: "flag over env", args: []string{"--http-addr", ":7002"}, env: map[string]string{"AMAS_HTTP_ADDR": ":7001"}, want: ":7002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.args, tc.env, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTPAddr != tc.want {
				t.Fatalf("http-addr = %q, want %q", c.HTTPAddr, tc.want)
			}
		})
	}
}

func TestValues(t *testing.T) {
	c, err := parse(t, nil, map[string]string{"AMAS_RETENTION_RAW": "2d"},
		"roles: [api, ingest]\nput-trusted-cidrs: 10.1.2.3/8\ncookie-secure: true\ningest-writers: 4\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Roles, ",") != "api,ingest" || !c.HasRole("ingest") || c.HasRole("alert") {
		t.Errorf("roles = %v", c.Roles)
	}
	if len(c.PutTrustedCIDRs) != 1 || c.PutTrustedCIDRs[0].String() != "10.0.0.0/8" {
		t.Errorf("trusted cidrs = %v", c.PutTrustedCIDRs)
	}
	if !c.CookieSecure || c.Writers != 4 || c.RetentionRaw != 48*time.Hour {
		t.Errorf("cookie-secure=%v writers=%d retention-raw=%v", c.CookieSecure, c.Writers, c.RetentionRaw)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{name: "bad env duration", env: map[string]string{"AMAS_QUERY_TIMEOUT": "soon"}, want: "AMAS_QUERY_TIMEOUT"},
		{name: "bad yaml int", yaml: "ingest-writers: many\n", want: "ingest-writers"},
		{name: "unknown yaml key", yaml: "http_port: 1\n", want: "unknown settings http_port"},
		{name: "bad cidr flag", args: []string{"--put-trusted-cidrs", "localhost"}, want: "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.args, tc.env, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown role", args: []string{"--roles", "api,web"}, want: `unknown role "web"`},
		{name: "batch above queue", args: []string{"--ingest-batch-size", "10", "--ingest-queue-size", "5"}, want: "--ingest-batch-size (10)"},
		{name: "retention below a day", args: []string{"--retention-raw", "1h"}, want: "--retention-raw must be at least 24h"},
		{name: "log level", args: []string{"--log-level", "loud"}, want: "--log-level"},
		{name: "previous keys without a key", args: []string{"--previous-secret-key-files", "/etc/amas/old.key"}, want: "--previous-secret-key-files needs --secret-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.args, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c, _ := parse(t, nil, nil, "")
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}
