package otlp

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/amas-eye/amas/store"
)

func TestConvertTraces(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("host.name", "web-1")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("shop")
	ss.Scope().SetVersion("1.2")
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	sp.SetParentSpanID([8]byte{3})
	sp.SetName("GET /\x00x\xff")
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(1500 * time.Microsecond)))
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("boom")
	sp.Attributes().PutStr("quote", `a "b" \ c`+"\n\x01")
	sp.Attributes().PutDouble("ratio", 0.25)
	sp.Attributes().PutDouble("nan", math.NaN())
	sp.Attributes().PutEmptySlice("list").AppendEmpty().SetBool(true)
	sp.Attributes().PutEmptyBytes("raw").FromRaw([]byte{0xff})
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	ev.Attributes().PutStr("exception.message", "nil pointer")
	link := sp.Links().AppendEmpty()
	link.SetTraceID([16]byte{9})
	link.SetSpanID([8]byte{8})
	ended := ss.Spans().AppendEmpty() // no end: duration 0
	ended.SetTraceID([16]byte{1})
	ended.SetSpanID([8]byte{4})
	ended.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	ss.Spans().AppendEmpty().SetSpanID([8]byte{5}) // no trace id
	noStart := ss.Spans().AppendEmpty()
	noStart.SetTraceID([16]byte{1})
	noStart.SetSpanID([8]byte{6})

	spans, rej := ConvertTraces(td)
	if rej.Count != 2 || !strings.Contains(rej.Message, "trace id is missing") {
		t.Errorf("rejected %d %q, want 2 naming the missing trace id first", rej.Count, rej.Message)
	}
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	got := spans[0]
	if got.Service != UnknownService || got.Name != "GET /\uFFFDx\uFFFD" || got.Kind != store.KindClient ||
		got.StatusCode != store.StatusError || got.StatusMessage != "boom" || got.Duration != 1500*time.Microsecond ||
		!got.Start.Equal(start) || got.ParentSpanID != (store.SpanID{3}) || got.TraceID.String() != "01000000000000000000000000000000" {
		t.Errorf("span %+v", got)
	}
	var attrs map[string]any
	if err := json.Unmarshal(got.Attributes, &attrs); err != nil {
		t.Fatalf("attributes %s: %v", got.Attributes, err)
	}
	want := map[string]any{"quote": "a \"b\" \\ c\n\x01", "ratio": 0.25, "nan": "NaN", "list": []any{true}, "raw": "/w==",
		"otel.scope.name": "shop", "otel.scope.version": "1.2"}
	for k, v := range want {
		if b1, _ := json.Marshal(attrs[k]); string(b1) != mustJSON(v) {
			t.Errorf("attribute %s = %s, want %s", k, b1, mustJSON(v))
		}
	}
	if string(got.Resource) != `{"host.name":"web-1"}` {
		t.Errorf("resource %s", got.Resource)
	}
	if string(got.Events) != `[{"time":"2026-11-01T12:00:00.001Z","name":"exception","attributes":{"exception.message":"nil pointer"}}]` {
		t.Errorf("events %s", got.Events)
	}
	if string(got.Links) != `[{"traceId":"09000000000000000000000000000000","spanId":"0800000000000000","attributes":{}}]` {
		t.Errorf("links %s", got.Links)
	}
	if spans[1].Duration != 0 || string(spans[1].Events) != "[]" {
		t.Errorf("span without end: %+v", spans[1])
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAppendStringIsValidJSONForPostgres(t *testing.T) {
	for _, s := range []string{"plain", "\x00", "\xff\xfe", "tab\there", "\u2028", "emoji 🎉", `back\slash "q"`} {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("%q encodes as %s: %v", s, b, err)
		}
		if strings.Contains(string(b), `\u0000`) || strings.ContainsRune(string(b), 0) {
			t.Errorf("%q encodes as %s, which jsonb refuses", s, b)
		}
	}
}
