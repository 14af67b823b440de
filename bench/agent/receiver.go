package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amas-eye/amas/collector/agent"
)

// ingestPath is where the agent posts its batches (agent.PutPath without its query).
const ingestPath = "/api/put"

// receiver stands in for amas serve: it takes the agent's gzip /api/put
// bodies and counts their points without storing them, so that what is
// measured is the agent, not a database.
type receiver struct {
	*httptest.Server
	token string

	points     atomic.Int64 // every point received
	matched    atomic.Int64 // points whose metric starts with the watched prefix
	heartbeats atomic.Int64
	badBodies  atomic.Int64

	prefix []byte // `"metric":"<prefix>`

	mu      sync.Mutex
	want    int64         // close reached when matched gets there
	reached chan struct{} // nil until watch
	at      time.Time     // when matched reached want
}

func newReceiver(token, metricPrefix string) *receiver {
	r := &receiver{token: token, prefix: []byte(`"metric":"` + metricPrefix)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ingestPath, r.put)
	mux.HandleFunc("POST "+agent.HeartbeatPath, func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.heartbeats.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	r.Server = httptest.NewServer(mux)
	return r
}

func (r *receiver) put(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "Bearer "+r.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	zr, err := gzip.NewReader(req.Body)
	if err != nil {
		r.badBodies.Add(1)
		http.Error(w, "body is not gzip", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		r.badBodies.Add(1)
		http.Error(w, "body does not decompress", http.StatusBadRequest)
		return
	}
	r.points.Add(int64(bytes.Count(body, []byte(`"metric":`))))
	if n := bytes.Count(body, r.prefix); n > 0 {
		r.count(int64(n))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) count(n int64) {
	total := r.matched.Add(n)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reached != nil && r.at.IsZero() && total >= r.want {
		r.at = time.Now()
		close(r.reached)
	}
}

// watch returns a channel closed once want points of the prefix arrived, and
// a function telling when that was.
func (r *receiver) watch(want int64) (<-chan struct{}, func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.want, r.reached = want, make(chan struct{})
	return r.reached, func() time.Time {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.at
	}
}
