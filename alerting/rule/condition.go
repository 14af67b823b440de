package rule

import (
	"math"
	"strconv"
	"strings"
	"text/template"

	"github.com/amas-eye/amas/alerting"
)

// Compare reports whether v passes th under op.
func Compare(op Op, v float64, th Threshold) bool {
	switch op {
	case OpGT:
		return v > th.Value
	case OpGE:
		return v >= th.Value
	case OpLT:
		return v < th.Value
	case OpLE:
		return v <= th.Value
	case OpEQ:
		return v == th.Value
	case OpNE:
		return v != th.Value
	case OpOutside:
		return v < th.Value || v > th.High
	case OpInside:
		return v >= th.Value && v <= th.High
	}
	return false
}

// compareOp is the comparison the rule applies: fixed by the mode for equal and
// not_equal change rules.
func (r *Rule) compareOp() Op {
	if r.Kind == KindChange && r.Change != nil {
		switch r.Change.Mode {
		case ChangeEqual:
			return OpEQ
		case ChangeNotEqual:
			return OpNE
		}
	}
	return r.Compare
}

// Holds reports whether v passes the threshold of sev; false when sev has none.
func (r *Rule) Holds(sev alerting.Severity, v float64) bool {
	th, ok := r.Thresholds[sev]
	return ok && Compare(r.compareOp(), v, th)
}

// Firing is the most urgent severity whose threshold v passes, and whether any does.
func (r *Rule) Firing(v float64) (alerting.Severity, bool) {
	for _, sev := range r.Severities() {
		if r.Holds(sev, v) {
			return sev, true
		}
	}
	return "", false
}

// ChangeValue is the compared value of a period-over-period rule from the current
// and the earlier window's values; ok is false when there is none (a percentage
// from an earlier 0 under ZeroNoData).
func (r *Rule) ChangeValue(cur, earlier float64) (v float64, ok bool) {
	switch r.Change.Mode {
	case ChangePctIncrease, ChangePctDecrease:
		diff := cur - earlier
		if r.Change.Mode == ChangePctDecrease {
			diff = -diff
		}
		if earlier == 0 {
			if r.Change.Zero != ZeroInfinite {
				return 0, false
			}
			switch {
			case diff > 0:
				return math.Inf(1), true
			case diff < 0:
				return math.Inf(-1), true
			}
			return 0, true
		}
		return diff / math.Abs(earlier) * 100, true
	}
	return cur - earlier, true
}

// AlertLabels are the labels of the alert instance of one group at one severity: the
// rule's labels, the group's tags, alertname and severity (later ones win).
func (r *Rule) AlertLabels(group map[string]string, sev alerting.Severity) alerting.Labels {
	out := make(alerting.Labels, len(r.Labels)+len(group)+2)
	for k, v := range r.Labels {
		out[k] = v
	}
	for k, v := range group {
		out[k] = v
	}
	out["alertname"] = r.Name
	out["severity"] = string(sev)
	return out
}

// TemplateFuncs are the functions annotation templates may call besides Go's
// built-ins (printf, index, ...): humanize (1234567 -> 1.235M) and
// humanizePercentage (0.1234 -> 12.34%), as in Prometheus.
var TemplateFuncs = template.FuncMap{
	"humanize":           humanize,
	"humanizePercentage": func(v float64) string { return trimZeros(strconv.FormatFloat(v*100, 'f', 2, 64)) + "%" },
}

func humanize(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= u.div {
			return trimZeros(strconv.FormatFloat(v/u.div, 'f', 3, 64)) + u.suffix
		}
	}
	return trimZeros(strconv.FormatFloat(v, 'f', 3, 64))
}

// trimZeros drops the trailing zeros of a fixed-point number, and its point.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// TemplateData is what annotation templates see: {{.Value}}, {{.Threshold}},
// {{.Labels.host}}, {{.Severity}}, {{.RuleName}}, {{.HasValue}}.
type TemplateData struct {
	RuleName  string
	Value     float64
	HasValue  bool
	Threshold float64
	Severity  alerting.Severity
	Labels    alerting.Labels
}

// RenderAnnotations renders the rule's annotation templates; a template that fails at
// run time gives its source text followed by the error, so the alert still says
// something.
func (r *Rule) RenderAnnotations(d TemplateData) map[string]string {
	if len(r.Annotations) == 0 {
		return nil
	}
	out := make(map[string]string, len(r.Annotations))
	for k, src := range r.Annotations {
		t, err := template.New(k).Funcs(TemplateFuncs).Option("missingkey=zero").Parse(src)
		if err != nil {
			out[k] = src + " (template error: " + err.Error() + ")"
			continue
		}
		var b strings.Builder
		if err := t.Execute(&b, d); err != nil {
			out[k] = src + " (template error: " + err.Error() + ")"
			continue
		}
		out[k] = b.String()
	}
	return out
}
