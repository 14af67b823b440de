// Package registry maps the collector kinds of agent.yaml to the built-in
// collectors: each kind decodes its options section into the collector's own
// Config (over that collector's defaults) and builds it.
package registry

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

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
	// The caller names the collector; its errors name the option.
	return b(options)
}

// Decode fills into (a pointer to a Config struct already holding its
// defaults) from options, by the Config's yaml tags, one option at a time so
// that every error names its option. Unknown options are errors, so a
// misspelt one is not silently ignored.
func Decode(options map[string]any, into any) error {
	known := optionNames(into)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(options)) {
		switch {
		case len(known) == 0:
			errs = append(errs, fmt.Errorf("unknown option %q: this collector takes no options", name))
			continue
		case !slices.Contains(known, name):
			errs = append(errs, fmt.Errorf("unknown option %q (known: %s)", name, strings.Join(known, ", ")))
			continue
		}
		if err := decodeOption(name, options[name], into); err != nil {
			errs = append(errs, fmt.Errorf("option %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func decodeOption(name string, value any, into any) error {
	data, err := yaml.Marshal(map[string]any{name: value})
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(into)
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		// The line numbers are those of the re-encoded option, not of
		// agent.yaml, so they would only mislead.
		msgs := make([]string, len(typeErr.Errors))
		for i, m := range typeErr.Errors {
			msgs[i] = yamlLine.ReplaceAllString(m, "")
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

var yamlLine = regexp.MustCompile(`^line \d+: `)

// optionNames lists the yaml keys of the struct into points to.
func optionNames(into any) []string {
	t := reflect.TypeOf(into).Elem()
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// withConfig makes the Builder of a collector whose options decode into a
// Config over the defaults from defaults.
func withConfig[Config any, C collector.Collector](defaults func() Config, build func(Config) (C, error)) Builder {
	return func(options map[string]any) (collector.Collector, error) {
		cfg := defaults()
		if err := Decode(options, &cfg); err != nil {
			return nil, err
		}
		c, err := build(cfg)
		if err != nil {
			return nil, err // not c: a nil *T in an interface is not nil
		}
		return c, nil
	}
}

// zeroConfig is the defaults of a Config whose zero value is its default.
func zeroConfig[Config any]() Config {
	var c Config
	return c
}
