package rule

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/amas-eye/amas/alerting"
)

// Limits on what a rule may ask for.
const (
	MinInterval = time.Second
	MaxWindow   = 31 * 24 * time.Hour
	MaxOffset   = 366 * 24 * time.Hour
	MaxNameLen  = 200
)

// FieldError is one thing wrong with a rule, naming the field ("thresholds.critical",
// "query.matchers[1].op").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists everything wrong with one rule.
type ValidationError struct {
	Rule   string
	Fields []*FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	name := e.Rule
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("rule %q: %s", name, strings.Join(msgs, "; "))
}

// ErrInvalid is wrapped by every ValidationError, for errors.Is.
var ErrInvalid = errors.New("invalid rule")

func (e *ValidationError) Unwrap() error { return ErrInvalid }

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are set by the engine on every alert.
var reservedLabels = []string{"alertname", "severity"}

type checker struct{ errs []*FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks a rule (after Defaults) and returns a *ValidationError naming
// every bad field, or nil.
func (r *Rule) Validate() error {
	var c checker
	r.checkBasics(&c)
	r.checkQuery(&c)
	r.checkCondition(&c)
	r.checkThresholds(&c)
	r.checkTexts(&c)
	if len(c.errs) == 0 {
		return nil
	}
	return &ValidationError{Rule: r.Name, Fields: c.errs}
}

func (r *Rule) checkBasics(c *checker) {
	switch {
	case strings.TrimSpace(r.Name) == "":
		c.add("name", "is required")
	case len(r.Name) > MaxNameLen:
		c.add("name", "is longer than %d characters", MaxNameLen)
	}
	if !slices.Contains(Kinds, r.Kind) {
		c.add("kind", "%q is not one of %s", r.Kind, joinQuoted(Kinds))
	}
	if r.Interval.D() < MinInterval {
		c.add("interval", "%s is shorter than the minimum of %s", r.Interval, Duration(MinInterval))
	}
	if r.For < 0 {
		c.add("for", "must not be negative")
	}
	if !slices.Contains(NoDataPolicies, r.NoData) {
		c.add("no_data", "%q is not one of %s", r.NoData, joinQuoted(NoDataPolicies))
	}
}

func (r *Rule) checkQuery(c *checker) {
	if r.Query.Metric == "" {
		c.add("query.metric", "is required")
	}
	for i, m := range r.Query.Matchers {
		field := fmt.Sprintf("query.matchers[%d]", i)
		if m.Key == "" {
			c.add(field+".key", "is required")
		}
		if _, ok := MatcherOps[m.Op]; !ok {
			c.add(field+".op", "%q is not one of \"=\", \"!=\", \"=~\", \"!~\"", m.Op)
		}
		if m.Op == "=~" || m.Op == "!~" {
			// PostgreSQL's dialect is checked by the store; this catches the
			// common mistakes (unbalanced brackets) before a query is made.
			if _, err := regexp.Compile(m.Value); err != nil {
				c.add(field+".value", "invalid regular expression %q: %v", m.Value, err)
			}
		}
	}
	for i, k := range r.Query.GroupBy {
		if k == "" {
			c.add(fmt.Sprintf("query.group_by[%d]", i), "is empty")
		}
	}
}

func (r *Rule) checkCondition(c *checker) {
	switch r.Kind {
	case KindLastValue:
		if r.Staleness <= 0 {
			c.add("staleness", "is required for a last-value rule: how young the newest point must be")
		} else if r.Staleness.D() > MaxWindow {
			c.add("staleness", "%s is longer than the maximum of %s", r.Staleness, Duration(MaxWindow))
		}
		if r.Reducer != "" && r.Reducer != ReduceLast {
			c.add("reducer", "a last-value rule reduces with last, not %q", r.Reducer)
		}
	default:
		if !slices.Contains(Reducers, r.Reducer) {
			c.add("reducer", "%q is not one of %s", r.Reducer, joinQuoted(Reducers))
		}
		switch {
		case r.Window <= 0:
			c.add("window", "is required: how far back the reducer reads, such as 5m")
		case r.Window.D() > MaxWindow:
			c.add("window", "%s is longer than the maximum of %s", r.Window, Duration(MaxWindow))
		}
	}
	if r.Kind == KindChange {
		r.checkChange(c)
	} else if r.Change != nil {
		c.add("change", "is only for period-over-period rules (kind change)")
	}
	equality := r.Kind == KindChange && r.Change != nil && (r.Change.Mode == ChangeEqual || r.Change.Mode == ChangeNotEqual)
	if !equality && !slices.Contains(Ops, r.Compare) {
		c.add("compare", "%q is not one of %s", r.Compare, joinQuoted(Ops))
	}
}

func (r *Rule) checkChange(c *checker) {
	if r.Change == nil {
		c.add("change", "is required for a period-over-period rule: offset and mode")
		return
	}
	switch {
	case r.Change.Offset <= 0:
		c.add("change.offset", "is required: how far back the earlier window is, such as 1d")
	case r.Change.Offset.D() > MaxOffset:
		c.add("change.offset", "%s is longer than the maximum of %s", r.Change.Offset, Duration(MaxOffset))
	}
	if !slices.Contains(ChangeModes, r.Change.Mode) {
		c.add("change.mode", "%q is not one of %s", r.Change.Mode, joinQuoted(ChangeModes))
	}
	if r.Change.Zero != ZeroNoData && r.Change.Zero != ZeroInfinite {
		c.add("change.zero", "%q is not one of \"nodata\", \"infinite\"", r.Change.Zero)
	}
	switch r.Change.Mode {
	case ChangeEqual, ChangeNotEqual:
		want := OpEQ
		if r.Change.Mode == ChangeNotEqual {
			want = OpNE
		}
		if r.Compare != "" && r.Compare != want {
			c.add("compare", "mode %s compares with %s, not %s", r.Change.Mode, want, r.Compare)
		}
	}
}

func (r *Rule) checkThresholds(c *checker) {
	if len(r.Thresholds) == 0 {
		c.add("thresholds", "at least one severity (critical, warning, info) needs a threshold")
	}
	equality := r.Kind == KindChange && r.Change != nil && (r.Change.Mode == ChangeEqual || r.Change.Mode == ChangeNotEqual)
	for _, sev := range sortedSeverities(r.Thresholds) {
		th := r.Thresholds[sev]
		field := "thresholds." + string(sev)
		if sev.Rank() == 0 {
			c.add(field, "unknown severity %q: want critical, warning or info", sev)
			continue
		}
		if math.IsNaN(th.Value) || math.IsInf(th.Value, 0) || math.IsNaN(th.High) || math.IsInf(th.High, 0) {
			c.add(field, "must be a finite number")
			continue
		}
		switch {
		case equality && (th.Value != 0 || th.High != 0):
			c.add(field, "mode %s compares the two windows with each other: the threshold only names the severity and must be 0", r.Change.Mode)
		case r.Compare.IsRange() && th.High < th.Value:
			c.add(field, "range %g..%g: high must not be below low", th.Value, th.High)
		case !r.Compare.IsRange() && th.High != 0:
			c.add(field+".high", "is only for the outside and inside comparisons")
		}
	}
}

func (r *Rule) checkTexts(c *checker) {
	for _, k := range sortedKeys(r.Labels) {
		switch {
		case !labelName.MatchString(k):
			c.add("labels."+k, "label names are letters, digits and _, not starting with a digit")
		case slices.Contains(reservedLabels, k):
			c.add("labels."+k, "is set by the engine on every alert")
		}
	}
	for _, k := range sortedKeys(r.Annotations) {
		if _, err := template.New(k).Funcs(TemplateFuncs).Option("missingkey=zero").Parse(r.Annotations[k]); err != nil {
			c.add("annotations."+k, "template: %v", err)
		}
	}
}

func sortedSeverities(m map[alerting.Severity]Threshold) []alerting.Severity {
	out := make([]alerting.Severity, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func joinQuoted[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
