package opentsdb

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/amas-eye/amas/ingest"
)

func rejected(t *testing.T, protocol, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := RejectedPoints.WithLabelValues(protocol, reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestRejectedPointsCounted checks that every refusal is counted under its
// protocol and reason.
func TestRejectedPointsCounted(t *testing.T) {
	type key struct{ protocol, reason string }
	want := map[key]float64{
		{protoHTTP, ingest.ReasonValue}:       2,
		{protoHTTP, ingest.ReasonTag}:         1,
		{protoHTTP, reasonMalformed}:          1,
		{protoTelnet, ingest.ReasonMetric}:    1,
		{protoTelnet, reasonLineTooLong}:      1,
		{protoTelnet, reasonUnauthorized}:     1,
		{protoTelnet, ingest.ReasonTimestamp}: 1,
	}
	before := map[key]float64{}
	for k := range want {
		before[k] = rejected(t, k.protocol, k.reason)
	}

	h := NewHTTPHandler(&fakeWriter{}, ingest.DefaultLimits, 1<<20, slog.New(slog.DiscardHandler))
	for _, body := range []string{
		`[{"metric":"m","timestamp":1356998400,"value":"NaN","tags":{"h":"a"}},
		  {"metric":"m","timestamp":1356998400,"value":"x","tags":{"h":"a"}},
		  {"metric":"m","timestamp":1356998400,"value":1}]`,
		`[{"metric":`,
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/api/put", bytes.NewReader([]byte(body))))
	}

	trusted := dial(t, startTCP(t, &fakeWriter{}, true))
	trusted.send("put m! 1356998400 1 host=a", "put m -1 1 host=a", "put m 1356998400 1 host="+strings.Repeat("a", 200), "version")
	trusted.skipTo("amas test")
	untrusted := dial(t, startTCP(t, &fakeWriter{}, false))
	untrusted.send("put m 1356998400 1 host=a", "version")
	untrusted.skipTo("amas test")

	for k, n := range want {
		if got := rejected(t, k.protocol, k.reason) - before[k]; got != n {
			t.Errorf("%s %s: counted %v, want %v", k.protocol, k.reason, got, n)
		}
	}
}
