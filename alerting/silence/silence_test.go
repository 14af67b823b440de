package silence

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/alerting"
)

func matchers(t *testing.T, ms ...[3]string) alerting.Matchers {
	t.Helper()
	var out alerting.Matchers
	for _, m := range ms {
		mt, err := alerting.NewMatcher(m[0], alerting.MatchOp(m[1]), m[2])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mt)
	}
	return out
}

func TestMatching(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	silences := []Silence{
		{ID: 3, Matchers: matchers(t, [3]string{"host", "=", "web-1"}), StartsAt: t0, EndsAt: t0.Add(time.Hour)},
		{ID: 1, Matchers: matchers(t, [3]string{"alertname", "=~", "High.*"}, [3]string{"env", "!=", "dev"}), StartsAt: t0, EndsAt: t0.Add(time.Hour)},
		{ID: 2, Matchers: matchers(t, [3]string{"host", "!~", "db-.*"}), StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)},
	}
	for _, tc := range []struct {
		name   string
		labels alerting.Labels
		at     time.Time
		want   []int64
	}{
		{"two active silences, sorted ids", alerting.Labels{"alertname": "HighCPU", "host": "web-1"}, t0.Add(time.Minute), []int64{1, 3}},
		{"!= excludes", alerting.Labels{"alertname": "HighCPU", "env": "dev"}, t0.Add(time.Minute), nil},
		{"regexp is anchored", alerting.Labels{"alertname": "VeryHighCPU"}, t0.Add(time.Minute), nil},
		{"pending silence does not mute", alerting.Labels{"host": "web-2"}, t0.Add(time.Minute), nil},
		{"it mutes once started", alerting.Labels{"host": "web-2"}, t0.Add(90 * time.Minute), []int64{2}},
		{"3 expired at its EndsAt as 2 started", alerting.Labels{"host": "web-1"}, t0.Add(time.Hour), []int64{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Matching(silences, tc.labels, tc.at); !slices.Equal(got, tc.want) {
				t.Errorf("Matching = %v, want %v", got, tc.want)
			}
		})
	}
	if s := silences[2]; s.State(t0) != StatePending || s.State(t0.Add(time.Hour)) != StateActive || s.State(t0.Add(2*time.Hour)) != StateExpired {
		t.Error("State does not follow StartsAt/EndsAt")
	}
}

func TestValidate(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ok := Silence{Matchers: matchers(t, [3]string{"host", "=", "a"}), StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedBy: "ops"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid silence: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Silence)
		want string
	}{
		{"no matchers", func(s *Silence) { s.Matchers = nil }, "at least one matcher"},
		{"matches everything", func(s *Silence) { s.Matchers = matchers(t, [3]string{"host", "=~", ".*"}) }, "match every alert"},
		{"bad regexp", func(s *Silence) { s.Matchers = alerting.Matchers{{Name: "a", Op: "=~", Value: "("}} }, "bad regular expression"},
		{"ends before start", func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Second) }, "must be after startsAt"},
		{"no end", func(s *Silence) { s.EndsAt = time.Time{} }, "required"},
		{"no creator", func(s *Silence) { s.CreatedBy = " " }, "createdBy is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
