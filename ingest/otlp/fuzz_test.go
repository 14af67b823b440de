package otlp

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/amas-eye/amas/ingest"
)

// FuzzOTLPJSON feeds arbitrary OTLP/JSON bodies to the trace and metrics paths.
// Whatever decodes must convert into rows PostgreSQL accepts (valid UTF-8
// without NUL, jsonb without \u0000) and points that pass validation, and every
// span is either converted or counted as rejected.
func FuzzOTLPJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := ptraceotlp.NewExportRequest()
		if tr.UnmarshalJSON(body) == nil {
			spans, rej := ConvertTraces(tr.Traces())
			if int64(len(spans))+rej.Count != int64(tr.Traces().SpanCount()) {
				t.Fatalf("%d spans converted + %d rejected != %d sent", len(spans), rej.Count, tr.Traces().SpanCount())
			}
			for _, sp := range spans {
				for _, s := range []string{sp.Service, sp.Name, sp.StatusMessage} {
					if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
						t.Fatalf("text %q is not storable", s)
					}
				}
				for _, col := range [][]byte{sp.Attributes, sp.Resource, sp.Events, sp.Links} {
					if !json.Valid(col) || strings.Contains(string(col), `\u0000`) || !utf8.Valid(col) {
						t.Fatalf("JSON column %q is not storable as jsonb", col)
					}
				}
				if sp.TraceID.IsZero() || sp.SpanID.IsZero() || sp.Duration < 0 {
					t.Fatalf("span %+v should have been rejected", sp)
				}
			}
		}
		mr := pmetricotlp.NewExportRequest()
		if mr.UnmarshalJSON(body) == nil {
			pts, _ := ConvertMetrics(mr.Metrics(), ingest.DefaultLimits, NewHistogramWindows(10))
			for _, p := range pts {
				if err := ingest.DefaultLimits.Validate(p); err != nil {
					t.Fatalf("point %+v passed conversion but not validation: %v", p, err)
				}
			}
		}
	})
}
