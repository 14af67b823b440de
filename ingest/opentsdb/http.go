package opentsdb

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/amas-eye/amas/ingest"
)

// Writer is what the protocols need from the write pipeline; *ingest.Pipeline
// is one.
type Writer interface {
	// Write queues points and waits for their commit; ErrOverloaded at once
	// when the queue is full.
	Write(ctx context.Context, pts []ingest.Point) error
	// Enqueue waits for room in the queue and returns without waiting for the
	// commit.
	Enqueue(ctx context.Context, pts []ingest.Point) error
}

// NewHTTPHandler serves POST /api/put as OpenTSDB 2.x does: 204 when every
// point was stored, 400 when any was refused (the others are still stored), with
// ?summary or ?details a body counting them (and with ?details listing the
// refused points). Bodies may be gzip-compressed and hold at most maxBodyBytes
// once decompressed. The caller checks credentials.
func NewHTTPHandler(w Writer, limits ingest.Limits, maxBodyBytes int64, log *slog.Logger) http.Handler {
	return &putHandler{w: w, limits: limits, maxBody: maxBodyBytes, log: log, tags: newTagCache()}
}

type putHandler struct {
	w       Writer
	limits  ingest.Limits
	maxBody int64
	log     *slog.Logger
	tags    *tagCache
}

// putSummary is the body of ?summary and ?details replies.
type putSummary struct {
	Errors  []PointError `json:"errors,omitempty"`
	Failed  int          `json:"failed"`
	Success int          `json:"success"`
}

func (h *putHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed", "The HTTP method ["+r.Method+"] is not permitted for this endpoint")
		return
	}
	body, err := h.body(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	defer body.Close()
	pts, bad, err := h.decode(body, r)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		RejectedPoints.WithLabelValues(protoHTTP, reasonMalformed).Inc()
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body too large: more than %d bytes (after decompression)", h.maxBody),
			"Split the data points into several requests")
		return
	case err != nil:
		RejectedPoints.WithLabelValues(protoHTTP, reasonMalformed).Inc()
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	for _, e := range bad {
		RejectedPoints.WithLabelValues(protoHTTP, e.reason).Inc()
	}
	if err := h.w.Write(r.Context(), pts); err != nil {
		h.writeFailed(w, err, len(pts))
		return
	}
	q := r.URL.Query()
	_, details := q["details"]
	_, summary := q["summary"]
	status := http.StatusOK
	if len(bad) > 0 {
		status = http.StatusBadRequest
	}
	switch {
	case details:
		writeJSON(w, status, putSummary{Errors: bad, Failed: len(bad), Success: len(pts)})
	case summary:
		writeJSON(w, status, putSummary{Failed: len(bad), Success: len(pts)})
	case len(bad) > 0:
		writeError(w, http.StatusBadRequest, "One or more data points had errors",
			`Please see the TSD logs or append "details" to the put request`)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// body is the request body, decompressed and bounded.
func (h *putHandler) body(w http.ResponseWriter, r *http.Request) (io.ReadCloser, error) {
	var body io.ReadCloser = r.Body
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("Content-Encoding is gzip but the body is not: %v", err)
		}
		body = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q: send plain or gzip bodies", enc)
	}
	return http.MaxBytesReader(w, body, h.maxBody), nil
}

// decode reads and decodes the body. A plain body is read into a buffer of its
// declared length at once, rather than one grown and copied as it comes.
func (h *putHandler) decode(body io.Reader, r *http.Request) ([]ingest.Point, []PointError, error) {
	var buf []byte
	if size := r.ContentLength; size > 0 && size <= h.maxBody && r.Header.Get("Content-Encoding") == "" {
		// net/http ends the body at its Content-Length.
		buf = make([]byte, size)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, nil, fmt.Errorf("read the request body: %w", err)
		}
	} else {
		var err error
		if buf, err = io.ReadAll(body); err != nil {
			return nil, nil, err
		}
	}
	return decodeJSONBody(buf, h.limits, h.tags)
}

// writeFailed answers a request whose valid points could not be queued.
func (h *putHandler) writeFailed(w http.ResponseWriter, err error, points int) {
	switch {
	case errors.Is(err, ingest.ErrOverloaded):
		RejectedPoints.WithLabelValues(protoHTTP, reasonOverloaded).Add(float64(points))
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "The write queue is full: nothing of this request was stored",
			"Retry after a pause; the server is writing as fast as the database allows")
	case errors.Is(err, ingest.ErrClosed):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "The server is shutting down: nothing of this request was stored", "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client left; its points are queued and will be committed.
	default:
		h.log.Error("write points", "points", points, "err", err)
		writeError(w, http.StatusInternalServerError, "Unable to store the data points", err.Error())
	}
}

// writeError writes OpenTSDB's error body, {"error":{"code","message","details"}}.
func writeError(w http.ResponseWriter, status int, message, details string) {
	e := map[string]any{"code": status, "message": message}
	if details != "" {
		e["details"] = details
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
