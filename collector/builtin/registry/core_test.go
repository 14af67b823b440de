package registry

import (
	"io"
	"strings"
	"testing"

	"github.com/amas-eye/amas/collector"
)

// closeIfCloser releases what a collector built in New (connection pools).
func closeIfCloser(t *testing.T, c collector.Collector) {
	t.Helper()
	if cl, ok := c.(io.Closer); ok {
		t.Cleanup(func() { _ = cl.Close() })
	}
}

// TestCoreKindsBuildFromDefaults: every core kind builds from its defaults;
// the checks that are nothing without a target build from a minimal one and
// say which option is missing when it is left out.
func TestCoreKindsBuildFromDefaults(t *testing.T) {
	needTargets := map[string]map[string]any{
		"ping":    {"targets": []any{"127.0.0.1"}},
		"process": {"targets": []any{map[string]any{"name": "init", "comm": "systemd"}}},
		"tcp":     {"targets": []any{map[string]any{"address": "127.0.0.1:22"}}},
		"http":    {"targets": []any{map[string]any{"url": "http://127.0.0.1:8080/"}}},
	}
	for kind := range coreKinds {
		t.Run(kind, func(t *testing.T) {
			minimal, needs := needTargets[kind]
			if needs {
				_, err := Build(kind, nil)
				if err == nil || !strings.Contains(err.Error(), `"targets"`) {
					t.Fatalf("Build(%s, no options) = %v, want an error naming \"targets\"", kind, err)
				}
			}
			c, err := Build(kind, minimal)
			if err != nil {
				t.Fatalf("Build(%s, %v): %v", kind, minimal, err)
			}
			closeIfCloser(t, c)
			if c.Name() != kind {
				t.Errorf("Build(%s) made a collector named %q", kind, c.Name())
			}
		})
	}
}

func TestBuildErrorsNameTheOption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    string
		options map[string]any
		want    []string
	}{
		{"unknown kind", "cobol", nil, []string{`unknown collector kind "cobol"`, "os"}},
		{"unknown option lists the known ones", "redis", map[string]any{"adress": "x:1"},
			[]string{`unknown option "adress"`, "address, password, username"}},
		{"a kind without options", "alive", map[string]any{"interval": "5s"},
			[]string{`unknown option "interval": this collector takes no options`}},
		{"wrong type", "os", map[string]any{"per_cpu": "sometimes"},
			[]string{`option "per_cpu"`, "sometimes"}},
		{"bad duration", "ping", map[string]any{"targets": []any{"h"}, "timeout": "soon"},
			[]string{`option "timeout"`, "soon"}},
		{"unknown key inside a target", "tcp", map[string]any{"targets": []any{map[string]any{"adress": "h:1"}}},
			[]string{`option "targets"`, "adress"}},
		{"value refused by the collector", "prometheus", map[string]any{"url": "localhost:9100"},
			[]string{"prometheus", `"url"`}},
		{"every bad option is reported", "os", map[string]any{"per_cpu": "x", "rooot": "/"},
			[]string{`option "per_cpu"`, `unknown option "rooot"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.kind, tc.options)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			t.Log(err)
			if strings.Contains(err.Error(), "line 1") {
				t.Errorf("error %q carries the line of the re-encoded option", err)
			}
		})
	}
}

func TestDecodeKeepsDefaultsOfOmittedOptions(t *testing.T) {
	type config struct {
		URL     string   `yaml:"url"`
		Samples int      `yaml:"max_samples"`
		Include []string `yaml:"include"`
	}
	cfg := config{URL: "http://default", Samples: 10}
	if err := Decode(map[string]any{"max_samples": 5, "include": []any{"a.*"}}, &cfg); err != nil {
		t.Fatal(err)
	}
	want := config{URL: "http://default", Samples: 5, Include: []string{"a.*"}}
	if cfg.URL != want.URL || cfg.Samples != want.Samples || len(cfg.Include) != 1 || cfg.Include[0] != "a.*" {
		t.Fatalf("decoded %+v, want %+v", cfg, want)
	}
}
