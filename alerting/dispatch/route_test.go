package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
)

func dur(d time.Duration) *time.Duration { return &d }

func m(t *testing.T, name string, op alerting.MatchOp, value string) alerting.Matcher {
	t.Helper()
	mt, err := alerting.NewMatcher(name, op, value)
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

func TestRouteMatch(t *testing.T) {
	tree, err := Compile(Route{
		Channels: []int64{1}, GroupBy: []string{"alertname"}, GroupWait: dur(10 * time.Second),
		Routes: []Route{
			{
				Matchers: alerting.Matchers{m(t, "team", alerting.MatchEqual, "db")}, Channels: []int64{2},
				GroupBy: []string{"alertname", "cluster"}, RepeatInterval: dur(time.Hour),
				Routes: []Route{
					{Matchers: alerting.Matchers{m(t, "severity", alerting.MatchEqual, "critical")}, Channels: []int64{3}, Continue: true},
					{Matchers: alerting.Matchers{m(t, "host", alerting.MatchRegexp, "db-.*")}, Channels: []int64{4}},
				},
			},
			{Matchers: alerting.Matchers{m(t, "team", alerting.MatchNotEqual, "db"), m(t, "env", alerting.MatchNotRegexp, "dev|test")}, Channels: []int64{5}, Continue: true, GroupBy: []string{GroupByAll}},
			{Matchers: alerting.Matchers{m(t, "env", alerting.MatchEqual, "prod")}, Channels: []int64{6}, GroupBy: []string{}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		labels   alerting.Labels
		channels [][]int64
	}{
		{"no child matches: root", alerting.Labels{"team": "web", "env": "dev"}, [][]int64{{1}}},
		{"db warning on db host: second grandchild", alerting.Labels{"team": "db", "host": "db-1", "severity": "warning"}, [][]int64{{4}}},
		{"db critical continues to the next grandchild", alerting.Labels{"team": "db", "host": "db-1", "severity": "critical"}, [][]int64{{3}, {4}}},
		{"db critical elsewhere: continue finds nothing more", alerting.Labels{"team": "db", "host": "web-1", "severity": "critical"}, [][]int64{{3}}},
		{"db alert matching no grandchild stays on the child", alerting.Labels{"team": "db", "host": "web-1"}, [][]int64{{2}}},
		{"continue on a sibling", alerting.Labels{"team": "web", "env": "prod"}, [][]int64{{5}, {6}}},
		{"missing label counts as empty for !=", alerting.Labels{"env": "prod"}, [][]int64{{5}, {6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tree.Match(tc.labels)
			if len(got) != len(tc.channels) {
				t.Fatalf("matched %d routes, want %d", len(got), len(tc.channels))
			}
			for i, n := range got {
				if !equalInts(n.Opts.Channels, tc.channels[i]) {
					t.Errorf("route %d: channels %v, want %v", i, n.Opts.Channels, tc.channels[i])
				}
			}
		})
	}
	t.Run("inheritance", func(t *testing.T) {
		leaf := tree.Match(alerting.Labels{"team": "db", "host": "db-1"})[0]
		o := leaf.Opts
		if o.GroupWait != 10*time.Second || o.GroupInterval != DefaultGroupInterval || o.RepeatInterval != time.Hour {
			t.Errorf("inherited timings = %v %v %v", o.GroupWait, o.GroupInterval, o.RepeatInterval)
		}
		if strings.Join(o.GroupBy, ",") != "alertname,cluster" {
			t.Errorf("inherited group_by = %v", o.GroupBy)
		}
		all := tree.Match(alerting.Labels{"team": "web", "env": "prod", "host": "a"})
		if !all[0].Opts.GroupByAll || len(all[1].Opts.GroupBy) != 0 || all[1].Opts.GroupByAll {
			t.Errorf("group_by ... / [] = %+v / %+v", all[0].Opts, all[1].Opts)
		}
	})
	t.Run("group keys", func(t *testing.T) {
		l := alerting.Labels{"team": "db", "host": "db-1", "alertname": "Lag", "cluster": "c1", "severity": "warning"}
		n := tree.Match(l)[0]
		if got, want := n.GroupKey(l), `{}/{team="db"}/{host=~"db-.*"}:{alertname="Lag", cluster="c1"}`; got != want {
			t.Errorf("group key = %s, want %s", got, want)
		}
		root := tree.Root
		if got := root.GroupKey(alerting.Labels{"x": "1"}); got != `{}:{}` {
			t.Errorf("root group key without alertname = %s", got)
		}
	})
}

func TestRouteKeysOfSameMatchers(t *testing.T) {
	same := alerting.Matchers{m(t, "a", alerting.MatchEqual, "1")}
	tree, err := Compile(Route{Routes: []Route{{Matchers: same, Continue: true}, {Matchers: same}}})
	if err != nil {
		t.Fatal(err)
	}
	got := tree.Match(alerting.Labels{"a": "1"})
	if len(got) != 2 || got[0].Key == got[1].Key {
		t.Fatalf("siblings with the same matchers share a key: %v", got)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
		want  string
	}{
		{"root matchers", Route{Matchers: alerting.Matchers{{Name: "a", Op: "=", Value: "b"}}}, "root route: must not have matchers"},
		{"root continue", Route{Continue: true}, "continue"},
		{"bad regexp", Route{Routes: []Route{{Matchers: alerting.Matchers{{Name: "a", Op: "=~", Value: "("}}}}}, "root.routes[0]: matcher a=~\"(\": bad regular expression"},
		{"bad op", Route{Routes: []Route{{}, {Matchers: alerting.Matchers{{Name: "a", Op: "==", Value: "b"}}}}}, `root.routes[1]: matcher a: unknown operator "=="`},
		{"bad label", Route{Routes: []Route{{Matchers: alerting.Matchers{{Name: "a b", Op: "=", Value: "b"}}}}}, `label name "a b"`},
		{"group_by ... with others", Route{GroupBy: []string{"...", "host"}}, "must be alone"},
		{"group_by bad label", Route{GroupBy: []string{"host name"}}, `group_by label "host name"`},
		{"zero interval", Route{GroupInterval: dur(0)}, "group_interval 0s must be positive"},
		{"negative wait", Route{Routes: []Route{{GroupWait: dur(-time.Second)}}}, "root.routes[0]: group_wait -1s must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.route)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNeedsUpdate(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	a := alerting.Alert{Fingerprint: "a", State: alerting.StateFiring, StartsAt: t0}
	b := alerting.Alert{Fingerprint: "b", State: alerting.StateFiring, StartsAt: t0}
	aResolved := a
	aResolved.State = alerting.StateResolved
	aRefired := a
	aRefired.StartsAt = t0.Add(time.Hour)
	sent := func(alerts ...alerting.Alert) LogEntry { return LogEntry{Alerts: logAlerts(alerts), CreatedAt: t0} }
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		name               string
		last               *LogEntry
		firing, resolved   []alerting.Alert
		sendResolved       bool
		now                time.Time
		wantSend, wantRept bool
	}{
		{"first firing", nil, []alerting.Alert{a}, nil, true, now, true, false},
		{"first but only resolved", nil, nil, []alerting.Alert{aResolved}, true, now, false, false},
		{"unchanged", ptr(sent(a)), []alerting.Alert{a}, nil, true, now, false, false},
		{"new alert", ptr(sent(a)), []alerting.Alert{a, b}, nil, true, now, true, false},
		{"same alert fires again", ptr(sent(a)), []alerting.Alert{aRefired}, nil, true, now, true, false},
		{"one resolved, send_resolved", ptr(sent(a, b)), []alerting.Alert{b}, []alerting.Alert{aResolved}, true, now, true, false},
		{"one resolved, no send_resolved", ptr(sent(a, b)), []alerting.Alert{b}, []alerting.Alert{aResolved}, false, now, false, false},
		{"resolved already told", ptr(sent(b, aResolved)), []alerting.Alert{b}, []alerting.Alert{aResolved}, true, now, false, false},
		{"all resolved", ptr(sent(a)), nil, []alerting.Alert{aResolved}, false, now, true, false},
		{"all resolved already told", ptr(sent(aResolved)), nil, []alerting.Alert{aResolved}, true, now, false, false},
		{"repeat due", ptr(sent(a)), []alerting.Alert{a}, nil, true, t0.Add(4 * time.Hour), true, true},
		{"repeat not yet", ptr(sent(a)), []alerting.Alert{a}, nil, true, t0.Add(4*time.Hour - time.Second), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last LogEntry
			if tc.last != nil {
				last = *tc.last
			}
			send, repeat := needsUpdate(last, tc.last != nil, tc.firing, tc.resolved, tc.sendResolved, 4*time.Hour, tc.now)
			if send != tc.wantSend || repeat != tc.wantRept {
				t.Errorf("needsUpdate = %v, %v; want %v, %v", send, repeat, tc.wantSend, tc.wantRept)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{Initial: time.Second, Max: 5 * time.Second}
	p.fill()
	var got []time.Duration
	for n := 1; n <= 5; n++ {
		got = append(got, p.backoff(n))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff = %v, want %v", got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
