package resolvers

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/amas-eye/amas/graph/model"
	"github.com/amas-eye/amas/store"
)

// TraceReader answers the trace queries (store.Store).
type TraceReader interface {
	Services(ctx context.Context) ([]string, error)
	Operations(ctx context.Context, service string) ([]string, error)
	SearchTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error)
	Trace(ctx context.Context, id store.TraceID) ([]store.TraceSpan, error)
	ServiceMap(ctx context.Context, from, to time.Time) (store.ServiceMap, error)
	OperationStats(ctx context.Context, service string, from, to time.Time, step time.Duration) ([]store.OperationStats, error)
}

// LiveSpanSource pushes newly stored spans (live.SpanHub).
type LiveSpanSource interface {
	Subscribe(ctx context.Context, f store.SpanFilter) (<-chan []store.Span, error)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var spanKinds = map[store.SpanKind]model.SpanKind{
	store.KindUnspecified: model.SpanKindUnspecified,
	store.KindInternal:    model.SpanKindInternal,
	store.KindServer:      model.SpanKindServer,
	store.KindClient:      model.SpanKindClient,
	store.KindProducer:    model.SpanKindProducer,
	store.KindConsumer:    model.SpanKindConsumer,
}

var spanStatuses = map[store.StatusCode]model.SpanStatus{
	store.StatusUnset: model.SpanStatusUnset,
	store.StatusOK:    model.SpanStatusOk,
	store.StatusError: model.SpanStatusError,
}

// spanModel maps a stored span onto the API's.
func spanModel(sp *store.Span, depth int) model.Span {
	out := model.Span{
		TraceID:       sp.TraceID.String(),
		SpanID:        sp.SpanID.String(),
		Service:       sp.Service,
		Name:          sp.Name,
		Kind:          spanKinds[sp.Kind],
		Start:         sp.Start,
		Duration:      ms(sp.Duration),
		Status:        spanStatuses[sp.StatusCode],
		StatusMessage: sp.StatusMessage,
		Depth:         depth,
		Attributes:    attributeList(sp.Attributes),
		Resource:      attributeList(sp.Resource),
		Events:        []model.SpanEvent{},
		Links:         []model.SpanLink{},
	}
	if !sp.ParentSpanID.IsZero() {
		p := sp.ParentSpanID.String()
		out.ParentSpanID = &p
	}
	var events []struct {
		Time       time.Time                  `json:"time"`
		Name       string                     `json:"name"`
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if json.Unmarshal(sp.Events, &events) == nil {
		for _, e := range events {
			out.Events = append(out.Events, model.SpanEvent{Time: e.Time, Name: e.Name, Attributes: attributesOf(e.Attributes)})
		}
	}
	var links []struct {
		TraceID    string                     `json:"traceId"`
		SpanID     string                     `json:"spanId"`
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if json.Unmarshal(sp.Links, &links) == nil {
		for _, l := range links {
			out.Links = append(out.Links, model.SpanLink{TraceID: l.TraceID, SpanID: l.SpanID, Attributes: attributesOf(l.Attributes)})
		}
	}
	return out
}

// attributeList decodes a stored JSON object of attributes, sorted by key.
func attributeList(raw json.RawMessage) []model.Attribute {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return []model.Attribute{}
	}
	return attributesOf(m)
}

func attributesOf(m map[string]json.RawMessage) []model.Attribute {
	out := make([]model.Attribute, 0, len(m))
	for k, v := range m {
		out = append(out, model.Attribute{Key: k, Value: attributeText(v)})
	}
	slices.SortFunc(out, func(a, b model.Attribute) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// attributeText is a string attribute's text, or the JSON of any other value.
func attributeText(v json.RawMessage) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func traceFilter(f model.TraceFilter) store.TraceQuery {
	q := store.TraceQuery{
		Service:     deref(f.Service),
		Operation:   deref(f.Operation),
		MinDuration: deref(f.MinDuration),
		MaxDuration: deref(f.MaxDuration),
		ErrorsOnly:  deref(f.ErrorsOnly),
		From:        f.From,
		To:          f.To,
		Limit:       deref(f.Limit),
	}
	for _, a := range f.Attributes {
		q.Attributes = append(q.Attributes, store.AttributeFilter{Key: a.Key, Value: a.Value})
	}
	return q
}

func summaryModel(t store.TraceSummary) model.TraceSummary {
	return model.TraceSummary{
		TraceID:       t.TraceID.String(),
		RootService:   t.RootService,
		RootOperation: t.RootOperation,
		Start:         t.Start,
		Duration:      ms(t.Duration),
		SpanCount:     t.SpanCount,
		ErrorCount:    t.ErrorCount,
		Services:      t.Services,
	}
}

func serviceMapModel(m store.ServiceMap) *model.ServiceMap {
	out := &model.ServiceMap{Nodes: []model.ServiceNode{}, Edges: []model.ServiceEdge{}}
	for _, n := range m.Nodes {
		out.Nodes = append(out.Nodes, model.ServiceNode{Service: n.Service, RequestRate: n.RequestRate,
			ErrorRate: n.ErrorRate, P95: ms(n.P95), Calls: int(n.Calls), Errors: int(n.Errors)})
	}
	for _, e := range m.Edges {
		out.Edges = append(out.Edges, model.ServiceEdge{Caller: e.Caller, Callee: e.Callee,
			Calls: int(e.Calls), Errors: int(e.Errors), P95: ms(e.P95)})
	}
	return out
}

func operationStatsModel(stats []store.OperationStats) []model.OperationStats {
	out := make([]model.OperationStats, 0, len(stats))
	for _, s := range stats {
		os := model.OperationStats{Operation: s.Operation, Step: s.Step, Points: make([]model.REDPoint, 0, len(s.Points))}
		for _, p := range s.Points {
			rp := model.REDPoint{T: p.T, Calls: int(p.Calls), Errors: int(p.Errors),
				RequestRate: float64(p.Calls) / s.Step.Seconds(), P50: ms(p.P50), P95: ms(p.P95), P99: ms(p.P99)}
			if p.Calls > 0 {
				rp.ErrorRate = float64(p.Errors) / float64(p.Calls)
			}
			os.Points = append(os.Points, rp)
		}
		out = append(out, os)
	}
	return out
}
