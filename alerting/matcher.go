package alerting

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MatchOp is how a Matcher compares a label's value, as in Alertmanager.
type MatchOp string

const (
	MatchEqual     MatchOp = "="
	MatchNotEqual  MatchOp = "!="
	MatchRegexp    MatchOp = "=~"
	MatchNotRegexp MatchOp = "!~"
)

// Matcher tests one label of an alert. Routes, silences and inhibition rules are
// lists of matchers that must all hold. A missing label has the value "", so
// {team=""} matches alerts without a team label, as in Alertmanager.
type Matcher struct {
	Name  string  `json:"name"`
	Op    MatchOp `json:"op"`
	Value string  `json:"value"`

	re *regexp.Regexp
}

// NewMatcher checks and compiles a matcher; a regular expression is anchored at
// both ends.
func NewMatcher(name string, op MatchOp, value string) (Matcher, error) {
	m := Matcher{Name: name, Op: op, Value: value}
	return m, m.compile()
}

func (m *Matcher) compile() error {
	if !validLabelName(m.Name) {
		return fmt.Errorf("matcher label name %q: want letters, digits and - _ . / (the characters of tag keys)", m.Name)
	}
	switch m.Op {
	case MatchEqual, MatchNotEqual:
		m.re = nil
		return nil
	case MatchRegexp, MatchNotRegexp:
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return fmt.Errorf("matcher %s%s%q: bad regular expression: %w", m.Name, m.Op, m.Value, err)
		}
		m.re = re
		return nil
	}
	return fmt.Errorf("matcher %s: unknown operator %q (want =, !=, =~ or !~)", m.Name, m.Op)
}

// Matches reports whether the matcher holds for labels.
func (m Matcher) Matches(labels Labels) bool {
	v := labels[m.Name]
	switch m.Op {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp, MatchNotRegexp:
		re := m.re
		if re == nil {
			// A matcher built as a literal and never compiled: compile this copy
			// (Compile once up front avoids doing it on every call).
			if err := m.compile(); err != nil {
				return false
			}
			re = m.re
		}
		return re.MatchString(v) == (m.Op == MatchRegexp)
	}
	return false
}

// UnmarshalJSON decodes and compiles a matcher, so a stored route, silence or
// inhibition rule with a bad matcher is an error when read.
func (m *Matcher) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name  string  `json:"name"`
		Op    MatchOp `json:"op"`
		Value string  `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = Matcher{Name: raw.Name, Op: raw.Op, Value: raw.Value}
	return m.compile()
}

// String renders the matcher as name="value", name=~"regexp", ...
func (m Matcher) String() string { return m.Name + string(m.Op) + strconv.Quote(m.Value) }

// Matchers is a conjunction of matchers.
type Matchers []Matcher

// Compile checks and compiles every matcher (after decoding from JSON).
func (ms Matchers) Compile() error {
	for i := range ms {
		if err := ms[i].compile(); err != nil {
			return err
		}
	}
	return nil
}

// Matches reports whether every matcher holds; an empty list matches everything.
func (ms Matchers) Matches(labels Labels) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// String renders the list as {a="1", b=~"x.*"} in its given order.
func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// ValidLabelName reports whether name can be a label name (used for group_by and
// inhibition equal labels too). Labels come from tag keys, so their characters
// are OpenTSDB's: letters, digits, - _ . /.
func ValidLabelName(name string) bool { return validLabelName(name) }

func validLabelName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r == '_', r == '-', r == '.', r == '/':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}
