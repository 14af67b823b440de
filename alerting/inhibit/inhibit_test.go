package inhibit

import (
	"strings"
	"testing"

	"github.com/amas-eye/amas/alerting"
)

func ms(t *testing.T, pairs ...string) alerting.Matchers {
	t.Helper()
	var out alerting.Matchers
	for i := 0; i < len(pairs); i += 3 {
		m, err := alerting.NewMatcher(pairs[i], alerting.MatchOp(pairs[i+1]), pairs[i+2])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func alert(state alerting.State, kv ...string) alerting.Alert {
	l := alerting.Labels{}
	for i := 0; i < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return alerting.Alert{Labels: l, Fingerprint: l.Fingerprint(), State: state}
}

func TestHostDownInhibitsItsHost(t *testing.T) {
	rules := []Rule{
		{ID: 7, Source: ms(t, "alertname", "=", "HostDown"), Target: ms(t, "alertname", "!=", "HostDown"), Equal: []string{"host"}},
		{ID: 8, Source: ms(t, "severity", "=", "critical"), Target: ms(t, "severity", "=~", "warning|critical"), Equal: []string{"cluster"}},
	}
	down := alert(alerting.StateFiring, "alertname", "HostDown", "host", "h1")
	resolvedDown := alert(alerting.StateResolved, "alertname", "HostDown", "host", "h3")
	cpu1 := alert(alerting.StateFiring, "alertname", "HighCPU", "host", "h1")
	cpu2 := alert(alerting.StateFiring, "alertname", "HighCPU", "host", "h2")
	cpu3 := alert(alerting.StateFiring, "alertname", "HighCPU", "host", "h3")
	critA := alert(alerting.StateFiring, "alertname", "X", "severity", "critical", "cluster", "a")
	critA2 := alert(alerting.StateFiring, "alertname", "Y", "severity", "critical", "cluster", "a")
	warnA := alert(alerting.StateFiring, "alertname", "Z", "severity", "warning", "cluster", "a")
	in := New(rules, []alerting.Alert{down, resolvedDown, cpu1, cpu2, cpu3, critA, critA2, warnA})
	for _, tc := range []struct {
		name    string
		a       alerting.Alert
		inhibit bool
		source  string
		ruleID  int64
	}{
		{"same host inhibited", cpu1, true, down.Fingerprint, 7},
		{"other host not", cpu2, false, "", 0},
		{"resolved source does not inhibit", cpu3, false, "", 0},
		{"source never inhibits itself", down, false, "", 0},
		{"both-sided alerts do not mute each other", critA, false, "", 0},
		{"target-only alert inhibited", warnA, true, "", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, rule, ok := in.InhibitedBy(tc.a)
			if ok != tc.inhibit || rule != tc.ruleID || (tc.source != "" && src != tc.source) {
				t.Errorf("InhibitedBy = %q, %d, %v; want %q, %d, %v", src, rule, ok, tc.source, tc.ruleID, tc.inhibit)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Rule
		want string
	}{
		{"no source", Rule{Target: ms(t, "a", "=", "b")}, "source matcher"},
		{"no target", Rule{Source: ms(t, "a", "=", "b")}, "target matcher"},
		{"bad equal", Rule{Source: ms(t, "a", "=", "b"), Target: ms(t, "a", "=", "c"), Equal: []string{"a b"}}, `equal label "a b"`},
		{"bad regexp", Rule{Source: alerting.Matchers{{Name: "a", Op: "=~", Value: "["}}, Target: ms(t, "a", "=", "c")}, "source: matcher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
