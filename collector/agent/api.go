package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/amas-eye/amas/collector/script"
)

// Handler is the local management API (JSON):
//
//	GET  /status                     the agent: host, server, spool, counters
//	GET  /collectors                 every collector with its health
//	POST /collectors/{name}/enable   switch one on (until reload or restart)
//	POST /collectors/{name}/disable  switch one off
//	POST /reload                     re-read agent.yaml; queued points are kept
//
// The POST endpoints need the agent's token (Authorization: Bearer), since
// any local user can reach a loopback port.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /collectors", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.Collectors())
	})
	mux.Handle("POST /collectors/{name}/enable", a.requireToken(a.setEnabled(true)))
	mux.Handle("POST /collectors/{name}/disable", a.requireToken(a.setEnabled(false)))
	mux.Handle("POST /reload", a.requireToken(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Reload(); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "collectors": len(a.Collectors())})
	})))
	return mux
}

func (a *Agent) setEnabled(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := a.SetEnabled(name, on)
		if errors.Is(err, script.ErrUnknownScript) {
			writeError(w, http.StatusNotFound, "no collector named "+name)
			return
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "enabled": on})
	}
}

func (a *Agent) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := "Bearer " + a.target.Load().Token
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
			writeError(w, http.StatusUnauthorized, "send the agent's token: Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
