package ingest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store/storetest"
)

func TestHeartbeat(t *testing.T) {
	s, _ := storetest.Migrated(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	h := ingest.NewHeartbeatHandler(s, func() time.Time { return now }, quiet)

	for _, tc := range []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{name: "good", status: http.StatusNoContent,
			body: `{"host":"db01","version":"1.0","os":"linux","intervalSeconds":10,"spoolBytes":512,"droppedPoints":3,
			        "collectors":[{"name":"mysql","up":false,"lastError":"connection refused"},{"name":"os","up":true}]}`},
		{name: "not json", body: `{"host":`, status: http.StatusBadRequest, want: "not valid JSON"},
		{name: "bad host", body: `{"host":"db 01"}`, status: http.StatusBadRequest, want: `host "db 01"`},
		{name: "bad interval", body: `{"host":"db02","intervalSeconds":-5}`, status: http.StatusBadRequest, want: "intervalSeconds -5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ingest.HeartbeatPath, strings.NewReader(tc.body)))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.status, tc.want)
			}
		})
	}

	agents, err := s.Agents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1 {
		t.Fatalf("%d agents stored, want 1", len(agents))
	}
	a := agents[0]
	if a.Host != "db01" || a.SpoolBytes != 512 || a.DroppedPoints != 3 || len(a.Collectors) != 2 ||
		a.Collectors[0].LastError != "connection refused" || a.IP != "192.0.2.1" {
		t.Fatalf("stored agent = %+v", a)
	}
	for _, tc := range []struct {
		after time.Duration
		up    bool
	}{{0, true}, {30 * time.Second, true}, {31 * time.Second, false}} {
		if got := a.Up(now.Add(tc.after)); got != tc.up {
			t.Errorf("%s after the heartbeat (interval 10s): up=%v, want %v", tc.after, got, tc.up)
		}
	}
}
