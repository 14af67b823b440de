package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/amas-eye/amas/app"
)

// queryResult holds the latency percentiles of the query benchmark, in ms.
type queryResult struct {
	traceP50, traceP99, searchP50, searchP99 float64
}

const traceQuery = `query($id: ID!) { trace(id: $id) { traceId spans { spanId parentSpanId service name kind start duration
	status statusMessage depth attributes { key value } resource { key value } events { time name } } } }`

const searchQuery = `query($f: TraceFilter!) { traces(filter: $f) { traceId rootService rootOperation start duration
	spanCount errorCount services } }`

// benchQueries times, through GraphQL over HTTP as the web app sends them, the
// call chain of random traces and trace searches of the kinds a user runs:
// one service's recent traces, its errors, one operation's slow ones, and one
// attribute value.
func benchQueries(ctx context.Context, a *app.App, o options, w *workload, token string) (queryResult, error) {
	if _, err := a.Store().Store.Pool().Exec(ctx, `VACUUM (ANALYZE) spans`); err != nil {
		return queryResult{}, fmt.Errorf("vacuum: %w", err)
	}
	var n int
	if err := a.Store().Store.Pool().QueryRow(ctx, `SELECT count(*) FROM spans`).Scan(&n); err != nil {
		return queryResult{}, err
	}
	url := "http://" + a.HTTPAddr() + "/graphql"
	rng := rand.New(rand.NewPCG(7, 77))
	traceRuns, err := latency(o.queryRuns, func() error {
		id := w.traceIDs[rng.IntN(len(w.traceIDs))]
		var got struct {
			Trace *struct{ Spans []struct{ SpanID string } }
		}
		if err := gql(ctx, url, token, traceQuery, map[string]any{"id": id}, &got); err != nil {
			return err
		}
		if got.Trace == nil || len(got.Trace.Spans) != o.traceSpans {
			return fmt.Errorf("trace %s: %+v, want %d spans", id, got.Trace, o.traceSpans)
		}
		return nil
	})
	if err != nil {
		return queryResult{}, fmt.Errorf("trace(id): %w", err)
	}
	// The last hour of the data, the default range of a trace search page.
	from, to := w.to.Add(-time.Hour), w.to.Add(time.Second)
	i := 0
	searchRuns, err := latency(o.queryRuns, func() error {
		svc := rng.IntN(o.services)
		f := map[string]any{"service": serviceName(svc), "from": from.Format(time.RFC3339Nano), "to": to.Format(time.RFC3339Nano), "limit": 20}
		switch i % 4 {
		case 1:
			f["errorsOnly"] = true
		case 2:
			f["operation"] = operationName(svc, rng.IntN(operationsPerService))
			f["minDuration"] = "150ms"
		case 3:
			f["attributes"] = []map[string]any{{"key": "http.status_code", "value": "500"}}
		}
		i++
		var got struct{ Traces []struct{ TraceID string } }
		if err := gql(ctx, url, token, searchQuery, map[string]any{"f": f}, &got); err != nil {
			return err
		}
		if len(got.Traces) == 0 {
			return fmt.Errorf("search %v found nothing", f)
		}
		return nil
	})
	if err != nil {
		return queryResult{}, fmt.Errorf("traces search: %w", err)
	}
	q := queryResult{traceP50: pct(traceRuns, 0.5), traceP99: pct(traceRuns, 0.99),
		searchP50: pct(searchRuns, 0.5), searchP99: pct(searchRuns, 0.99)}
	fmt.Printf("%-34s %10s %10s\n", fmt.Sprintf("query (%d spans stored)", n), "p50 ms", "p99 ms")
	fmt.Printf("%-34s %10.1f %10.1f\n", "trace(id) (GraphQL)", q.traceP50, q.traceP99)
	fmt.Printf("%-34s %10.1f %10.1f\n\n", "traces search, last hour (GraphQL)", q.searchP50, q.searchP99)
	return q, nil
}

// latency runs f runs times and returns the durations in ms, sorted.
func latency(runs int, f func() error) ([]float64, error) {
	out := make([]float64, 0, runs)
	for range runs {
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		out = append(out, float64(time.Since(start))/float64(time.Millisecond))
	}
	slices.Sort(out)
	return out, nil
}

func pct(sorted []float64, q float64) float64 {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func gql(ctx context.Context, url, token, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %w", resp.Status, err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("graphql: %s", r.Errors[0].Message)
	}
	return json.Unmarshal(r.Data, out)
}
