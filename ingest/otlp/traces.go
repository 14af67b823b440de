package otlp

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/amas-eye/amas/store"
)

// UnknownService is the service of spans whose resource has no service.name, as
// the OpenTelemetry SDKs name it.
const UnknownService = "unknown_service"

// Rejected counts what a request carried that cannot be stored, with the reason
// for the first one, for the OTLP partial success.
type Rejected struct {
	Count   int64
	Message string
}

func (r *Rejected) add(format string, args ...any) {
	if r.Count == 0 {
		r.Message = fmt.Sprintf(format, args...)
	}
	r.Count++
}

// ConvertTraces turns OTLP traces into span rows. Spans without a valid trace or
// span id, or without a start time, are rejected.
func ConvertTraces(td ptrace.Traces) ([]store.Span, Rejected) {
	var rej Rejected
	out := make([]store.Span, 0, td.SpanCount())
	var buf []byte
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		attrs := rs.Resource().Attributes()
		service := UnknownService
		if v, ok := attrs.Get("service.name"); ok && v.AsString() != "" {
			service = cleanText(v.AsString())
		}
		resource := appendAttributes(nil, attrs)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope()
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				row, err := convertSpan(sp, service, resource, scope, &buf)
				if err != nil {
					rej.add("span %d of scope %d of resource %d: %v", k, j, i, err)
					continue
				}
				out = append(out, row)
			}
		}
	}
	return out, rej
}

func convertSpan(sp ptrace.Span, service string, resource []byte, scope pcommon.InstrumentationScope, buf *[]byte) (store.Span, error) {
	tid, sid := sp.TraceID(), sp.SpanID()
	if tid.IsEmpty() {
		return store.Span{}, fmt.Errorf("trace id is missing or all zero")
	}
	if sid.IsEmpty() {
		return store.Span{}, fmt.Errorf("span id is missing or all zero")
	}
	if sp.StartTimestamp() == 0 {
		return store.Span{}, fmt.Errorf("span %s has no start time", sid)
	}
	start := sp.StartTimestamp().AsTime()
	dur := time.Duration(0)
	if end := sp.EndTimestamp(); end > sp.StartTimestamp() {
		dur = time.Duration(end - sp.StartTimestamp())
	}
	b := (*buf)[:0]
	b = appendAttributes(b, sp.Attributes())
	if scope.Name() != "" {
		// The scope rides along as attributes, as the Zipkin exporters write it.
		b = appendMember(b, "otel.scope.name", scope.Name())
		if scope.Version() != "" {
			b = appendMember(b, "otel.scope.version", scope.Version())
		}
	}
	attrEnd := len(b)
	b = appendEvents(b, sp.Events())
	eventsEnd := len(b)
	b = appendLinks(b, sp.Links())
	*buf = b
	// One allocation for the three JSON columns.
	cols := make([]byte, len(b))
	copy(cols, b)
	row := store.Span{
		TraceID:       store.TraceID(tid),
		SpanID:        store.SpanID(sid),
		ParentSpanID:  store.SpanID(sp.ParentSpanID()),
		Service:       service,
		Name:          cleanText(sp.Name()),
		Kind:          store.SpanKind(sp.Kind()),
		Start:         start,
		Duration:      dur,
		StatusCode:    store.StatusCode(sp.Status().Code()),
		StatusMessage: cleanText(sp.Status().Message()),
		Attributes:    cols[:attrEnd],
		Resource:      resource,
		Events:        cols[attrEnd:eventsEnd],
		Links:         cols[eventsEnd:],
	}
	if row.Kind < store.KindUnspecified || row.Kind > store.KindConsumer {
		row.Kind = store.KindUnspecified
	}
	if row.StatusCode < store.StatusUnset || row.StatusCode > store.StatusError {
		row.StatusCode = store.StatusUnset
	}
	return row, nil
}

func appendEvents(b []byte, events ptrace.SpanEventSlice) []byte {
	b = append(b, '[')
	for i := 0; i < events.Len(); i++ {
		ev := events.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"time":`...)
		b = appendString(b, ev.Timestamp().AsTime().UTC().Format(time.RFC3339Nano))
		b = append(b, `,"name":`...)
		b = appendString(b, ev.Name())
		b = append(b, `,"attributes":`...)
		b = appendAttributes(b, ev.Attributes())
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendLinks(b []byte, links ptrace.SpanLinkSlice) []byte {
	b = append(b, '[')
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"traceId":`...)
		b = appendString(b, l.TraceID().String())
		b = append(b, `,"spanId":`...)
		b = appendString(b, l.SpanID().String())
		b = append(b, `,"attributes":`...)
		b = appendAttributes(b, l.Attributes())
		b = append(b, '}')
	}
	return append(b, ']')
}
