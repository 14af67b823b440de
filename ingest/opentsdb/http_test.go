package opentsdb

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/amas-eye/amas/ingest"
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = io.WriteString(w, s)
	_ = w.Close()
	return b.Bytes()
}

func TestHTTPPut(t *testing.T) {
	const good = `{"metric":"sys.cpu.user","timestamp":1356998400,"value":42.5,"tags":{"host":"web01"}}`
	const goodMS = `{"metric":"sys.cpu.user","timestamp":"1356998400500","value":"7","tags":{"host":"web02"}}`
	const badValue = `{"metric":"sys.cpu.user","timestamp":1356998400,"value":"NaN","tags":{"host":"web01"}}`
	const noTags = `{"metric":"sys.cpu.user","timestamp":1356998400,"value":1}`
	const wrongType = `{"metric":"sys.cpu.user","timestamp":1356998400,"value":1,"tags":["host"]}`
	for _, tc := range []struct {
		name     string
		method   string
		query    string
		body     []byte
		gzip     bool
		writeErr error
		status   int
		stored   int
		answer   string // substring of the body
	}{
		{name: "one object", body: []byte(good), status: 204, stored: 1},
		{name: "array", body: []byte("[" + good + "," + goodMS + "]"), status: 204, stored: 2},
		{name: "gzip", body: gzipped("[" + good + "," + goodMS + "]"), gzip: true, status: 204, stored: 2},
		{name: "summary", query: "?summary", body: []byte(good), status: 200, stored: 1, answer: `{"failed":0,"success":1}`},
		{name: "mixed batch stores the good points", body: []byte("[" + good + "," + badValue + "," + noTags + "]"), status: 400, stored: 1,
			answer: `"message":"One or more data points had errors"`},
		{name: "details", query: "?details", body: []byte("[" + badValue + "," + good + "," + noTags + "]"), status: 400, stored: 1,
			answer: `"error":"Unable to parse value to a number"},{"datapoint":{"metric":"sys.cpu.user","timestamp":1356998400,"value":1,"tags":null},"error":"Missing tags"}],"failed":2,"success":1}`},
		{name: "a field of the wrong type refuses only its point", query: "?details", body: []byte("[" + good + "," + wrongType + "]"), status: 400, stored: 1,
			answer: `"error":"Unable to parse the data point: field \"tags\" must be a map[string]string, not a JSON array"`},
		{name: "sync is accepted", query: "?sync&sync_timeout=1000", body: []byte(good), status: 204, stored: 1},
		{name: "not JSON", body: []byte(`{"metric":`), status: 400, answer: `unable to parse the request body as JSON`},
		{name: "not an object", body: []byte(`42`), status: 400, answer: `want an object or an array`},
		{name: "empty", body: nil, status: 400, answer: `the request body is empty`},
		{name: "empty array", body: []byte(`[]`), status: 400, answer: `No datapoints found in content`},
		{name: "gzip header, plain body", body: []byte(good), gzip: true, status: 400, answer: `Content-Encoding is gzip but the body is not`},
		{name: "too large", body: []byte("[" + strings.Repeat(good+",", 30) + good + "]"), status: 413, answer: `Request body too large: more than 2048 bytes`},
		{name: "too large once decompressed", body: gzipped("[" + strings.Repeat(good+",", 30) + good + "]"), gzip: true, status: 413},
		{name: "overloaded", body: []byte(good), writeErr: ingest.ErrOverloaded, status: 503, answer: `The write queue is full`},
		{name: "shutting down", body: []byte(good), writeErr: ingest.ErrClosed, status: 503, answer: `shutting down`},
		{name: "GET", method: http.MethodGet, status: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &fakeWriter{err: tc.writeErr}
			h := NewHTTPHandler(w, ingest.DefaultLimits, 2048, slog.New(slog.DiscardHandler))
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/api/put"+tc.query, bytes.NewReader(tc.body))
			if tc.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if n := len(w.stored()); n != tc.stored {
				t.Errorf("%d points stored, want %d", n, tc.stored)
			}
			if !strings.Contains(rec.Body.String(), tc.answer) {
				t.Errorf("body %s, want it to contain %s", rec.Body, tc.answer)
			}
			if tc.status >= 400 && !json.Valid(rec.Body.Bytes()) {
				t.Errorf("error body is not JSON: %s", rec.Body)
			}
			if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tc.status == 405 && rec.Header().Get("Allow") != "POST" {
				t.Errorf("405 with Allow %q", rec.Header().Get("Allow"))
			}
		})
	}
}
