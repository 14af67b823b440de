package otlp

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters may compress with gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/amas-eye/amas/auth"
)

// TokenChecker resolves an API token to its caller (auth.Service.CheckToken).
type TokenChecker func(ctx context.Context, token string) (auth.Principal, error)

// NewGRPCServer returns a gRPC server with the OTLP trace and metrics export
// services. Every call needs an API token whose role may write, sent as
// "authorization: Bearer <token>" metadata. Messages may be up to maxMsgBytes.
func NewGRPCServer(r *Receiver, check TokenChecker, maxMsgBytes int, log *slog.Logger) *grpc.Server {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMsgBytes),
		grpc.ChainUnaryInterceptor(authInterceptor(check, log)),
	)
	ptraceotlp.RegisterGRPCServer(srv, &traceService{r: r})
	pmetricotlp.RegisterGRPCServer(srv, &metricsService{r: r})
	return srv
}

func authInterceptor(check TokenChecker, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get("authorization")
		if len(vals) == 0 {
			return nil, status.Error(codes.Unauthenticated, `send an API token as "authorization: Bearer <token>" metadata`)
		}
		scheme, token, _ := strings.Cut(vals[0], " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return nil, status.Error(codes.Unauthenticated, `the authorization metadata must read "Bearer <token>"`)
		}
		p, err := check(ctx, strings.TrimSpace(token))
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			return nil, status.Error(codes.Unauthenticated, err.Error())
		case err != nil:
			log.Warn("check OTLP token", "err", err)
			return nil, retryStatus(codes.Unavailable, "cannot check credentials right now; try again")
		case !p.Role.CanWrite():
			return nil, status.Errorf(codes.PermissionDenied, "the %s role may not send data", p.Role)
		}
		return handler(auth.WithPrincipal(ctx, p), req)
	}
}

// retryStatus is a retryable status carrying RetryInfo, as OTLP asks of
// back-pressure.
func retryStatus(code codes.Code, msg string) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)})
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// grpcError maps a failed export onto its status.
func grpcError(err error) error {
	switch {
	case retryable(err):
		return retryStatus(codes.Unavailable, err.Error())
	case errors.Is(err, errTooLarge):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	default:
		return status.Error(codes.Internal, "the data could not be stored")
	}
}

type traceService struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *traceService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	rej, err := s.r.ExportTraces(ctx, req.Traces())
	if err != nil {
		return ptraceotlp.NewExportResponse(), grpcError(err)
	}
	resp := ptraceotlp.NewExportResponse()
	if rej.Count > 0 {
		resp.PartialSuccess().SetRejectedSpans(rej.Count)
		resp.PartialSuccess().SetErrorMessage(rej.Message)
	}
	return resp, nil
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *metricsService) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	rej, err := s.r.ExportMetrics(ctx, req.Metrics())
	if err != nil {
		return pmetricotlp.NewExportResponse(), grpcError(err)
	}
	resp := pmetricotlp.NewExportResponse()
	if rej.Count > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(rej.Count)
		resp.PartialSuccess().SetErrorMessage(rej.Message)
	}
	return resp, nil
}
