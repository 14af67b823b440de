package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/amas-eye/amas/config"
)

// TestREADMEDocumentsEverySetting keeps the README's settings table true: every
// flag of `amas serve`, with its environment variable and default, must be in it.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg config.Server
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range cfg.Flags(fs) {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = ""
		}
		row := fmt.Sprintf("| `--%s` | `%s` | %s |", s.Name, s.Env, def)
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row for --%s; it should start with:\n%s", s.Name, row)
		}
	}
}
