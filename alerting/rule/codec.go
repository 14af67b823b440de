package rule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/amas-eye/amas/store"
)

// Record encodes the rule for the store.
func (r *Rule) Record() (store.AlertRuleRecord, error) {
	spec, err := json.Marshal(r)
	if err != nil {
		return store.AlertRuleRecord{}, fmt.Errorf("encode rule %q: %w", r.Name, err)
	}
	return store.AlertRuleRecord{
		ID: r.ID, Name: r.Name, Spec: spec, Interval: r.Interval.D(), Enabled: r.Enabled, Owner: r.Owner, Version: r.Version,
	}, nil
}

// FromRecord decodes a stored rule; the record's columns win over the spec.
func FromRecord(rec store.AlertRuleRecord) (*Rule, error) {
	var r Rule
	if err := json.Unmarshal(rec.Spec, &r); err != nil {
		return nil, fmt.Errorf("decode rule %d %q: %w", rec.ID, rec.Name, err)
	}
	r.ID, r.Version, r.Name, r.Enabled, r.Owner = rec.ID, rec.Version, rec.Name, rec.Enabled, rec.Owner
	r.Interval = Duration(rec.Interval)
	return &r, nil
}

// Compiler compiles an expression into a rule that has only its condition (kind,
// query, reducer, window, staleness, change, compare, thresholds and, when the
// expression says it, for): alerting/expr.Compile.
type Compiler func(src string) (*Rule, error)

// ApplyExpr compiles r.Expr and takes its condition. A condition field that is
// also set on r is an error naming it: the expression is the one place it is said.
func (r *Rule) ApplyExpr(compile Compiler) error {
	var c checker
	if r.Kind != "" {
		c.add("kind", "is set by expr")
	}
	if r.Query.Metric != "" || len(r.Query.Matchers) > 0 || len(r.Query.GroupBy) > 0 {
		c.add("query", "is set by expr")
	}
	if r.Reducer != "" {
		c.add("reducer", "is set by expr")
	}
	if r.Window != 0 || r.Staleness != 0 {
		c.add("window", "is set by expr")
	}
	if r.Change != nil {
		c.add("change", "is set by expr")
	}
	if r.Compare != "" || len(r.Thresholds) > 0 {
		c.add("thresholds", "are set by expr")
	}
	if len(c.errs) > 0 {
		return &ValidationError{Rule: r.Name, Fields: c.errs}
	}
	cond, err := compile(r.Expr)
	if err != nil {
		return &ValidationError{Rule: r.Name, Fields: []*FieldError{{Field: "expr", Msg: err.Error()}}}
	}
	if cond.For != 0 && r.For != 0 && cond.For != r.For {
		return &ValidationError{Rule: r.Name, Fields: []*FieldError{{Field: "for",
			Msg: fmt.Sprintf("%s differs from the expression's for %s: give it once", r.For, cond.For)}}}
	}
	r.Kind, r.Query, r.Reducer, r.Window, r.Staleness = cond.Kind, cond.Query, cond.Reducer, cond.Window, cond.Staleness
	r.Change, r.Compare, r.Thresholds = cond.Change, cond.Compare, cond.Thresholds
	if cond.For != 0 {
		r.For = cond.For
	}
	return nil
}

// File is the YAML document of `amas rules export` and `import`.
type File struct {
	Rules []*Rule `yaml:"rules"`
}

// fileRule is one rule of a File as written: a rule compiled from an expression
// is written as its expression, without the condition fields it gives.
func fileRule(r *Rule) *Rule {
	out := *r
	if out.Expr != "" {
		out.Kind, out.Query, out.Reducer, out.Window, out.Staleness = "", Query{}, "", 0, 0
		out.Change, out.Compare, out.Thresholds = nil, "", nil
	}
	return &out
}

// EncodeFile writes rules as YAML, sorted by name.
func EncodeFile(rules []*Rule) ([]byte, error) {
	f := File{Rules: make([]*Rule, len(rules))}
	for i, r := range rules {
		f.Rules[i] = fileRule(r)
	}
	slices.SortFunc(f.Rules, func(a, b *Rule) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	return b.Bytes(), nil
}

// DecodeFile reads a YAML rules file: every rule is compiled (when it has an
// expression), given its defaults (enabled unless it says enabled: false) and
// validated. All errors are returned together, each naming the rule (by position
// and name) and the field; unknown fields are errors too.
func DecodeFile(data []byte, compile Compiler) ([]*Rule, error) {
	var doc struct {
		Rules []yaml.Node `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	var (
		out  []*Rule
		errs []error
		seen = map[string]int{}
	)
	for i := range doc.Rules {
		node := &doc.Rules[i]
		r, err := decodeFileRule(node, compile)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d] (line %d): %w", i, node.Line, err))
			continue
		}
		if j, dup := seen[r.Name]; dup {
			errs = append(errs, fmt.Errorf("rules[%d] (line %d): name %q is also the name of rules[%d]", i, node.Line, r.Name, j))
			continue
		}
		seen[r.Name] = i
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func decodeFileRule(node *yaml.Node, compile Compiler) (*Rule, error) {
	var r Rule
	if err := strictDecode(node, &r); err != nil {
		return nil, err
	}
	var presence struct {
		Enabled *bool `yaml:"enabled"`
	}
	if err := node.Decode(&presence); err != nil {
		return nil, err
	}
	r.Enabled = presence.Enabled == nil || *presence.Enabled
	if r.Expr != "" {
		if err := r.ApplyExpr(compile); err != nil {
			return nil, err
		}
	}
	r.Defaults()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// strictDecode decodes node into v, refusing fields v does not have.
func strictDecode(node *yaml.Node, v any) error {
	b, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}
