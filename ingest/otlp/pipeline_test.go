package otlp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func oneTrace(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bp")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{7, byte(i + 1)})
		sp.SetSpanID([8]byte{byte(i + 1)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	return td
}

// TestBackPressure fills the queue of a pipeline whose writers have not
// started and checks that every protocol answers with retryable back-pressure,
// then that the queued spans are committed once the writers run.
func TestBackPressure(t *testing.T) {
	st, _ := storetest.Migrated(t)
	log := slog.New(slog.DiscardHandler)
	var committed []store.Span
	pipe := NewSpanPipeline(store.NewSpanWriter(st), SpanPipelineConfig{QueueSize: 4,
		OnCommit: func(s []store.Span) { committed = append(committed, s...) }}, log, nil)
	recv := NewReceiver(pipe, nil, ingest.DefaultLimits, log, nil)

	queued := make(chan error, 1)
	go func() {
		_, err := recv.ExportTraces(context.Background(), oneTrace(4))
		queued <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for pipe.queued.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	t.Run("pipeline", func(t *testing.T) {
		if _, err := recv.ExportTraces(context.Background(), oneTrace(1)); !errors.Is(err, ingest.ErrOverloaded) {
			t.Errorf("export into a full queue: %v, want ErrOverloaded", err)
		}
		if _, err := recv.ExportTraces(context.Background(), oneTrace(5)); err == nil || errors.Is(err, ingest.ErrOverloaded) {
			t.Errorf("export larger than the queue: %v, want a non-retryable error", err)
		}
	})
	t.Run("HTTP 503 with Retry-After", func(t *testing.T) {
		body, _ := ptraceotlp.NewExportRequestFromTraces(oneTrace(1)).MarshalProto()
		req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		NewHTTPHandler(recv, 1<<20, log).ServeHTTP(w, req)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Errorf("%d Retry-After %q, want 503 and 1", w.Code, w.Header().Get("Retry-After"))
		}
	})
	t.Run("gRPC UNAVAILABLE with RetryInfo", func(t *testing.T) {
		svc := &traceService{r: recv}
		_, err := svc.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(oneTrace(1)))
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || len(st.Details()) != 1 {
			t.Fatalf("status %v, want UNAVAILABLE with one detail", st)
		}
		if ri, ok := st.Details()[0].(*errdetails.RetryInfo); !ok || ri.RetryDelay.AsDuration() != RetryAfter {
			t.Errorf("detail %v, want RetryInfo of %s", st.Details()[0], RetryAfter)
		}
	})

	pipe.Start()
	if err := <-queued; err != nil {
		t.Fatalf("queued export: %v", err)
	}
	if len(committed) != 4 {
		t.Errorf("%d spans committed, want 4", len(committed))
	}
	if err := pipe.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := recv.ExportTraces(context.Background(), oneTrace(1)); !errors.Is(err, ingest.ErrClosed) {
		t.Errorf("export after Close: %v, want ErrClosed", err)
	}
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM spans WHERE service = 'bp'`).Scan(&n); err != nil || n != 4 {
		t.Errorf("%d spans stored (%v), want 4", n, err)
	}
}
