package registry_test

import (
	"io"
	"slices"
	"testing"

	"github.com/amas-eye/amas/collector/agent"
	"github.com/amas-eye/amas/collector/builtin/registry"
)

// Build is what `amas agent` hands the agent to make its collectors.
var _ agent.Factory = registry.Build

// exampleFile is the documented agent.yaml shipped with Amas.
const exampleFile = "../../examples/agent.yaml"

// TestExampleAgentYAML keeps the documented example true: it loads, it
// validates, every collector in it builds, and it lists every built-in kind.
func TestExampleAgentYAML(t *testing.T) {
	cfg, err := agent.LoadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("the example does not validate:\n%v", err)
	}
	var listed []string
	for name, cc := range cfg.Collectors {
		kind := cc.Kind
		if kind == "" {
			kind = name
		}
		listed = append(listed, kind)
		c, err := registry.Build(kind, cc.Options)
		if err != nil {
			t.Errorf("collectors.%s (kind %s): %v", name, kind, err)
			continue
		}
		if cl, ok := c.(io.Closer); ok {
			_ = cl.Close()
		}
	}
	for _, kind := range registry.Kinds() {
		if !slices.Contains(listed, kind) {
			t.Errorf("the example does not document the %s collector", kind)
		}
	}
}
