// Package expr is Amas's rule expression language: a small PromQL-like form of an
// alert rule's condition that compiles to the rule model (alerting/rule).
//
//	rule      = value [ "by" "(" [ name { "," name } ] ")" ] condition [ "for" duration ] .
//	value     = reducer [ "by" "(" [ name { "," name } ] ")" ] "(" selector ")"
//	          | "anomaly" "(" selector ")"
//	          | change "(" reducer "(" selector ")" "," duration [ "," zero ] ")" .
//	reducer   = "avg" | "min" | "max" | "sum" | "count" | "last" | "rate" | "p95" .
//	change    = "pct_increase" | "pct_decrease" | "abs_change" | "equal" | "not_equal" .
//	zero      = "nodata" | "infinite" .
//	selector  = metric [ "{" [ matcher { "," matcher } ] "}" ] "[" duration "]" .
//	matcher   = name ( "=" | "!=" | "=~" | "!~" ) string .
//	condition = test [ severity ] { "," test [ severity ] }   (every test the same operator)
//	          | severity                                      (equal and not_equal only) .
//	test      = ( ">" | ">=" | "<" | "<=" | "==" | "!=" ) number
//	          | ( "outside" | "inside" ) "(" number "," number ")" .
//	severity  = "critical" | "warning" | "info" .
//
// by (...) may come after the call or, as in PromQL, between the reducer and its
// parentheses. A test without a severity is warning's. last(m[2m]) is a last-value rule whose
// newest point must be younger than 2m; anomaly(m[5m]) the maximum anomaly score
// of m's series over 5m. Strings are double- or single-quoted with Go escapes;
// durations are whole numbers with units ms, s, m, h, d, w (1h30m); # starts a
// comment. Examples:
//
//	avg(mysql.performance.threads_running{host=~"db-.*"}[5m]) by (host) > 50
//	max(os.cpu.used{dc="eu"}[10m]) by (host) > 95 critical, > 80 warning for 5m
//	last(agent.heartbeat{}[2m]) by (host) < 1
//	pct_increase(sum(http.requests{service="api"}[1h]), 1w) by (service) > 50
//	avg(disk.used_pct[5m]) by (host, mount) outside(5, 90)
//	not_equal(last(app.version[10m]), 1d) info
//
// Errors give the line and column of the mistake and show it with a caret.
package expr

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/alerting/rule"
)

// maxSource bounds the expression text.
const maxSource = 16 << 10

// Compile parses src into a rule holding its condition: Kind, Query, Reducer,
// Window or Staleness, Change, Compare, Thresholds, For (when given), and Expr.
// The rule's other settings are the caller's. A mistake gives an *Error.
func Compile(src string) (*rule.Rule, error) {
	if len(src) > maxSource {
		return nil, errorAt(src, maxSource, fmt.Sprintf("expression longer than %d bytes", maxSource))
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	r, err := p.rule()
	if err != nil {
		return nil, err
	}
	r.Expr = src
	return r, nil
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return errorAt(p.src, t.pos, fmt.Sprintf(format, args...))
}

// expect takes the token text want (punctuation or an operator) or fails naming it.
func (p *parser) expect(want, context string) error {
	t := p.next()
	if (t.kind == tokPunct || t.kind == tokOp) && t.text == want {
		return nil
	}
	return p.errorf(t, "expected %q %s, found %s", want, context, t.describe())
}

func (p *parser) isPunct(text string) bool {
	t := p.peek()
	return t.kind == tokPunct && t.text == text
}

func (p *parser) isWord(word string) bool {
	t := p.peek()
	return t.kind == tokIdent && t.text == word
}

var changeModes = map[string]rule.ChangeMode{
	"pct_increase": rule.ChangePctIncrease,
	"pct_decrease": rule.ChangePctDecrease,
	"abs_change":   rule.ChangeAbs,
	"equal":        rule.ChangeEqual,
	"not_equal":    rule.ChangeNotEqual,
}

func (p *parser) rule() (*rule.Rule, error) {
	r := &rule.Rule{}
	if err := p.value(r); err != nil {
		return nil, err
	}
	if p.isWord("by") {
		byTok := p.next()
		if r.Query.GroupBy != nil {
			return nil, p.errorf(byTok, "by is given twice: before and after the call")
		}
		groupBy, err := p.groupBy()
		if err != nil {
			return nil, err
		}
		r.Query.GroupBy = groupBy
	}
	if err := p.condition(r); err != nil {
		return nil, err
	}
	if p.isWord("for") {
		p.next()
		d, err := p.duration("after for")
		if err != nil {
			return nil, err
		}
		r.For = d
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorf(t, "unexpected %s after the rule: expected \"by\", a comparison, \"for\" or the end", t.describe())
	}
	return r, nil
}

func (p *parser) value(r *rule.Rule) error {
	t := p.next()
	if t.kind != tokIdent {
		return p.errorf(t, "expected a reducer (%s), anomaly or a change function (%s), found %s",
			joinNames(rule.Reducers), joinNames(slices.Sorted(maps.Keys(changeModes))), t.describe())
	}
	if mode, ok := changeModes[t.text]; ok {
		return p.change(r, t, mode)
	}
	if t.text == "anomaly" {
		r.Kind, r.Reducer = rule.KindAnomaly, rule.ReduceMax
		return p.call(r, "anomaly")
	}
	red, err := p.reducerOf(t)
	if err != nil {
		return err
	}
	r.Kind, r.Reducer = rule.KindThreshold, red
	if red == rule.ReduceLast {
		r.Kind, r.Reducer = rule.KindLastValue, ""
	}
	if p.isWord("by") { // PromQL's prefix form: avg by (host) (m[5m])
		p.next()
		groupBy, err := p.groupBy()
		if err != nil {
			return err
		}
		r.Query.GroupBy = groupBy
	}
	if err := p.call(r, t.text); err != nil {
		return err
	}
	if r.Kind == rule.KindLastValue {
		r.Staleness, r.Window = r.Window, 0
	}
	return nil
}

func (p *parser) reducerOf(t token) (rule.Reducer, error) {
	red := rule.Reducer(t.text)
	if t.kind != tokIdent || !slices.Contains(rule.Reducers, red) {
		return "", p.errorf(t, "unknown reducer %s: want one of %s", t.describe(), joinNames(rule.Reducers))
	}
	return red, nil
}

// call reads "(" selector ")" after the function name fn.
func (p *parser) call(r *rule.Rule, fn string) error {
	if err := p.expect("(", "after "+fn); err != nil {
		return err
	}
	if err := p.selector(r); err != nil {
		return err
	}
	return p.expect(")", "to close "+fn+"(")
}

func (p *parser) change(r *rule.Rule, fnTok token, mode rule.ChangeMode) error {
	fn := fnTok.text
	r.Kind = rule.KindChange
	r.Change = &rule.Change{Mode: mode, Zero: rule.ZeroNoData}
	if err := p.expect("(", "after "+fn); err != nil {
		return err
	}
	red, err := p.reducerOf(p.next())
	if err != nil {
		return err
	}
	r.Reducer = red
	if err := p.call(r, string(red)); err != nil {
		return err
	}
	if err := p.expect(",", "and the offset of the earlier window (such as 1d) in "+fn+"("); err != nil {
		return err
	}
	if r.Change.Offset, err = p.duration("as the offset of the earlier window"); err != nil {
		return err
	}
	if p.isPunct(",") {
		p.next()
		t := p.next()
		switch {
		case t.kind == tokIdent && t.text == string(rule.ZeroNoData):
			r.Change.Zero = rule.ZeroNoData
		case t.kind == tokIdent && t.text == string(rule.ZeroInfinite):
			r.Change.Zero = rule.ZeroInfinite
		default:
			return p.errorf(t, "expected nodata or infinite (what a change from an earlier 0 is), found %s", t.describe())
		}
	}
	return p.expect(")", "to close "+fn+"(")
}

func (p *parser) selector(r *rule.Rule) error {
	t := p.next()
	if t.kind != tokIdent {
		return p.errorf(t, "expected a metric name, found %s", t.describe())
	}
	r.Query.Metric = t.text
	if p.isPunct("{") {
		p.next()
		matchers, err := p.matchers()
		if err != nil {
			return err
		}
		r.Query.Matchers = matchers
	}
	if err := p.expect("[", "and the window (such as [5m]) after the metric"); err != nil {
		return err
	}
	d, err := p.duration("as the window")
	if err != nil {
		return err
	}
	r.Window = d
	return p.expect("]", "after the window")
}

func (p *parser) matchers() ([]rule.Matcher, error) {
	var out []rule.Matcher
	for !p.isPunct("}") {
		key := p.next()
		if key.kind != tokIdent {
			return nil, p.errorf(key, "expected a tag name or \"}\", found %s", key.describe())
		}
		op := p.next()
		if _, ok := rule.MatcherOps[op.text]; op.kind != tokOp || !ok {
			return nil, p.errorf(op, "expected =, !=, =~ or !~ after the tag %q, found %s", key.text, op.describe())
		}
		val := p.next()
		if val.kind != tokString {
			return nil, p.errorf(val, "expected a quoted value after %s%s, found %s", key.text, op.text, val.describe())
		}
		out = append(out, rule.Matcher{Key: key.text, Op: op.text, Value: val.text})
		if p.isPunct(",") {
			p.next()
			continue
		}
		if !p.isPunct("}") {
			t := p.peek()
			return nil, p.errorf(t, "expected \",\" or \"}\" after the matcher on %q, found %s", key.text, t.describe())
		}
	}
	p.next()
	return out, nil
}

func (p *parser) groupBy() ([]string, error) {
	if err := p.expect("(", "after by"); err != nil {
		return nil, err
	}
	var out []string
	for !p.isPunct(")") {
		t := p.next()
		if t.kind != tokIdent {
			return nil, p.errorf(t, "expected a tag name or \")\" in by (...), found %s", t.describe())
		}
		out = append(out, t.text)
		if p.isPunct(",") {
			p.next()
			continue
		}
		if !p.isPunct(")") {
			t := p.peek()
			return nil, p.errorf(t, "expected \",\" or \")\" in by (...), found %s", t.describe())
		}
	}
	p.next()
	return out, nil
}

var severities = map[string]alerting.Severity{
	"critical": alerting.SeverityCritical, "warning": alerting.SeverityWarning, "info": alerting.SeverityInfo,
}

func (p *parser) condition(r *rule.Rule) error {
	equality := r.Kind == rule.KindChange && (r.Change.Mode == rule.ChangeEqual || r.Change.Mode == rule.ChangeNotEqual)
	if equality {
		sev := alerting.SeverityWarning
		if t := p.peek(); t.kind == tokIdent && severities[t.text] != "" {
			p.next()
			sev = severities[t.text]
		} else if t.kind == tokOp {
			return p.errorf(t, "%s compares the two windows with each other: give only a severity, not a threshold", r.Change.Mode)
		}
		r.Thresholds = map[alerting.Severity]rule.Threshold{sev: {}}
		return nil
	}
	r.Thresholds = map[alerting.Severity]rule.Threshold{}
	for {
		start := p.peek()
		op, th, err := p.test()
		if err != nil {
			return err
		}
		if r.Compare != "" && op != r.Compare {
			return p.errorf(start, "every threshold of a rule uses the same comparison: %s here, %s before", op, r.Compare)
		}
		r.Compare = op
		sev := alerting.SeverityWarning
		if t := p.peek(); t.kind == tokIdent && severities[t.text] != "" {
			p.next()
			sev = severities[t.text]
		}
		if _, dup := r.Thresholds[sev]; dup {
			return p.errorf(start, "%s has a threshold already", sev)
		}
		r.Thresholds[sev] = th
		if !p.isPunct(",") {
			return nil
		}
		p.next()
	}
}

func (p *parser) test() (rule.Op, rule.Threshold, error) {
	t := p.next()
	switch {
	case t.kind == tokOp && t.text != "=" && t.text != "=~" && t.text != "!~":
		v, err := p.number("after " + t.text)
		return rule.Op(t.text), rule.Threshold{Value: v}, err
	case t.kind == tokIdent && (t.text == "outside" || t.text == "inside"):
		if err := p.expect("(", "after "+t.text); err != nil {
			return "", rule.Threshold{}, err
		}
		lowTok := p.peek()
		low, err := p.number("as the low end of the range")
		if err != nil {
			return "", rule.Threshold{}, err
		}
		if err := p.expect(",", "between the ends of the range"); err != nil {
			return "", rule.Threshold{}, err
		}
		high, err := p.number("as the high end of the range")
		if err != nil {
			return "", rule.Threshold{}, err
		}
		if high < low {
			return "", rule.Threshold{}, p.errorf(lowTok, "range (%g, %g): the low end is above the high end", low, high)
		}
		if err := p.expect(")", "to close the range"); err != nil {
			return "", rule.Threshold{}, err
		}
		return rule.Op(t.text), rule.Threshold{Value: low, High: high}, nil
	}
	return "", rule.Threshold{}, p.errorf(t, "expected a comparison (>, >=, <, <=, ==, !=, outside(a, b), inside(a, b)), found %s", t.describe())
}

func (p *parser) number(context string) (float64, error) {
	t := p.next()
	if t.kind != tokNumber {
		return 0, p.errorf(t, "expected a number %s, found %s", context, t.describe())
	}
	v, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		return 0, p.errorf(t, "invalid number %s", t.describe())
	}
	return v, nil
}

func (p *parser) duration(context string) (rule.Duration, error) {
	t := p.next()
	if t.kind != tokDuration && !(t.kind == tokNumber && t.text == "0") {
		return 0, p.errorf(t, "expected a duration such as 5m %s, found %s", context, t.describe())
	}
	d, err := rule.ParseDuration(t.text)
	if err != nil {
		return 0, p.errorf(t, "%v", err)
	}
	return d, nil
}

func joinNames[T ~string](vs []T) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += string(v)
	}
	return out
}
