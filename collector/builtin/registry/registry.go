// Package registry maps the collector kinds of agent.yaml to the built-in
// collectors: each kind decodes its options section into the collector's own
// Config (over that collector's defaults) and builds it.
package registry

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/amas-eye/amas/collector"
)

// Builder builds one collector from the options section of agent.yaml.
type Builder func(options map[string]any) (collector.Collector, error)

// kinds is every built-in collector kind: the host and middleware collectors
// (core.go) and the big-data platform (bigdata.go).
func kinds() map[string]Builder {
	all := maps.Clone(coreKinds)
	maps.Copy(all, bigDataKinds)
	return all
}

// Kinds lists the built-in collector kinds, sorted.
func Kinds() []string { return slices.Sorted(maps.Keys(kinds())) }

// Build is an agent.Factory: it builds the collector of kind from options.
func Build(kind string, options map[string]any) (collector.Collector, error) {
	b, ok := kinds()[kind]
	if !ok {
		return nil, fmt.Errorf("unknown collector kind %q (known: %v)", kind, Kinds())
	}
	c, err := b(options)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", kind, err)
	}
	return c, nil
}

// Decode fills into (a pointer to a Config already holding its defaults) from
// options, by the Config's yaml tags. Unknown keys are errors, so a misspelt
// option is not silently ignored.
func Decode(options map[string]any, into any) error {
	if len(options) == 0 {
		return nil
	}
	data, err := yaml.Marshal(options)
	if err != nil {
		return fmt.Errorf("options: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return nil
}
