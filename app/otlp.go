package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/amas-eye/amas/ingest/otlp"
	"github.com/amas-eye/amas/live"
	"github.com/amas-eye/amas/store"
)

// otlpParts are the trace side of `serve`: with the ingest role the OTLP
// listeners, the span pipeline and the RED aggregator; with the api role the
// live span hub.
type otlpParts struct {
	spans    *otlp.SpanPipeline
	red      *otlp.RED
	receiver *otlp.Receiver
	hub      *live.SpanHub

	grpcLn  net.Listener
	grpc    *grpc.Server
	http    httpListener // OTLP/HTTP, with Zipkin at /api/v2/spans
	zipkin  httpListener // Zipkin's own port, when --zipkin-addr is set
	redStop context.CancelFunc
	redDone chan struct{}
}

// initOTLP builds the parts the configured roles need.
func (a *App) initOTLP() {
	st := a.db.Store
	if a.cfg.HasRole("api") {
		a.otlp.hub = live.NewSpanHub(live.PoolConnector(st.Pool()), st, a.log, live.Options{})
	}
	if a.pipeline == nil {
		return
	}
	a.otlp.red = otlp.NewRED(a.pipeline, otlp.REDConfig{Interval: a.cfg.TracesREDInterval}, a.log.With("component", "traces-red"))
	a.otlp.spans = otlp.NewSpanPipeline(store.NewSpanWriter(st), otlp.SpanPipelineConfig{
		QueueSize: a.cfg.SpanQueueSize, Writers: a.cfg.Writers, OnCommit: a.otlp.red.Observe,
	}, a.log.With("component", "spans"), a.reg)
	a.otlp.receiver = otlp.NewReceiver(a.otlp.spans, a.pipeline, a.limits(), a.log.With("component", "otlp"), a.reg)
}

// startOTLP opens the OTLP listeners and starts the span workers.
func (a *App) startOTLP(ctx context.Context) error {
	if a.otlp.hub != nil {
		a.goRun("live-spans", func() error { return a.otlp.hub.Run(ctx) })
	}
	if a.otlp.spans == nil {
		return nil
	}
	a.otlp.spans.Start()
	redCtx, cancel := context.WithCancel(context.Background())
	a.otlp.redStop, a.otlp.redDone = cancel, make(chan struct{})
	go func() {
		defer close(a.otlp.redDone)
		_ = a.otlp.red.Run(redCtx)
	}()
	var err error
	if a.cfg.OTLPGRPCAddr != "" {
		if a.otlp.grpcLn, err = net.Listen("tcp", a.cfg.OTLPGRPCAddr); err != nil {
			return fmt.Errorf("--otlp-grpc-addr: %w", err)
		}
		a.otlp.grpc = otlp.NewGRPCServer(a.otlp.receiver, a.auth.CheckToken, int(a.cfg.MaxBodyBytes), a.log.With("component", "otlp-grpc"))
		a.goRun("otlp-grpc", func() error { return a.otlp.grpc.Serve(a.otlp.grpcLn) })
	}
	h := a.auth.RequireWriteAnswering(otlp.NewHTTPHandler(a.otlp.receiver, a.cfg.MaxBodyBytes, a.log.With("component", "otlp-http")), otlp.WriteRefusal)
	if a.otlp.http, err = a.listenHTTP("otlp-http", a.cfg.OTLPHTTPAddr, h); err != nil {
		return fmt.Errorf("--otlp-http-addr: %w", err)
	}
	zipkin := http.NewServeMux()
	zipkin.Handle(otlp.ZipkinPath, h)
	if a.otlp.zipkin, err = a.listenHTTP("zipkin", a.cfg.ZipkinAddr, zipkin); err != nil {
		return fmt.Errorf("--zipkin-addr: %w", err)
	}
	return nil
}

// httpListener is an HTTP server of the trace side and its listener; the
// zero value is a disabled one.
type httpListener struct {
	ln  net.Listener
	srv *http.Server
}

// listenHTTP serves h on addr until Stop; an empty addr disables it.
func (a *App) listenHTTP(role, addr string, h http.Handler) (httpListener, error) {
	if addr == "" {
		return httpListener{}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return httpListener{}, err
	}
	l := httpListener{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	a.goRun(role, func() error {
		if err := l.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return l, nil
}

func (l httpListener) shutdown(ctx context.Context) error {
	if l.srv == nil {
		return nil
	}
	return l.srv.Shutdown(ctx)
}

func (l httpListener) addr() string {
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// stopOTLP stops taking spans, commits those accepted, and writes the RED
// points they make to the ingest pipeline, which must still be open.
func (a *App) stopOTLP(ctx context.Context) []error {
	var errs []error
	if a.otlp.grpc != nil {
		stopped := make(chan struct{})
		go func() {
			a.otlp.grpc.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
			a.otlp.grpc.Stop()
		}
	}
	if err := a.otlp.http.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("otlp http shutdown: %w", err))
	}
	if err := a.otlp.zipkin.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("zipkin shutdown: %w", err))
	}
	if a.otlp.spans == nil {
		return errs
	}
	if err := a.otlp.spans.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if a.otlp.redStop != nil {
		a.otlp.redStop()
		<-a.otlp.redDone
	}
	if err := a.otlp.red.Flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("write RED metrics: %w", err))
	}
	return errs
}

// OTLPGRPCAddr is the address of the OTLP gRPC listener, empty when disabled.
func (a *App) OTLPGRPCAddr() string {
	if a.otlp.grpcLn == nil {
		return ""
	}
	return a.otlp.grpcLn.Addr().String()
}

// OTLPHTTPAddr is the address of the OTLP HTTP listener, empty when disabled.
func (a *App) OTLPHTTPAddr() string { return a.otlp.http.addr() }

// ZipkinAddr is the address of the Zipkin listener, empty when disabled.
func (a *App) ZipkinAddr() string { return a.otlp.zipkin.addr() }
