package otlp

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// HTTP paths of the receivers.
const (
	TracesPath  = "/v1/traces"
	MetricsPath = "/v1/metrics"
	ZipkinPath  = "/api/v2/spans"
)

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// NewHTTPHandler serves OTLP/HTTP (/v1/traces and /v1/metrics, binary protobuf
// or JSON, optionally gzip-compressed) and Zipkin v2 JSON (/api/v2/spans).
// Bodies may hold at most maxBodyBytes once decompressed. The caller checks
// credentials.
func NewHTTPHandler(r *Receiver, maxBodyBytes int64, log *slog.Logger) http.Handler {
	h := &httpHandler{r: r, maxBody: maxBodyBytes, log: log, zipkin: zipkinv2.NewJSONTracesUnmarshaler(false)}
	mux := http.NewServeMux()
	mux.HandleFunc(TracesPath, h.traces)
	mux.HandleFunc(MetricsPath, h.metrics)
	mux.HandleFunc(ZipkinPath, h.zipkinSpans)
	return mux
}

type httpHandler struct {
	r       *Receiver
	maxBody int64
	log     *slog.Logger
	zipkin  ptrace.Unmarshaler
}

// encoding is how a request body is encoded, and so its reply.
type encoding string

// request checks the method and content type and reads the body.
func (h *httpHandler) request(w http.ResponseWriter, req *http.Request, allowed ...string) (encoding, []byte, bool) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return "", nil, false
	}
	ct, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(allowed, ct) {
		msg := fmt.Sprintf("unsupported Content-Type %q: want %s", req.Header.Get("Content-Type"), strings.Join(allowed, " or "))
		writeStatus(w, contentJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument, msg)
		return "", nil, false
	}
	enc := encoding(ct)
	body, status, err := h.body(req)
	if err != nil {
		writeStatus(w, enc, status, codes.InvalidArgument, err.Error())
		return "", nil, false
	}
	return enc, body, true
}

// body reads the request body, decompressing gzip, up to maxBody bytes.
func (h *httpHandler) body(req *http.Request) ([]byte, int, error) {
	var r io.Reader = req.Body
	switch ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("body is not valid gzip: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Encoding %q: want gzip or none", ce)
	}
	b, err := io.ReadAll(io.LimitReader(r, h.maxBody+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %v", err)
	}
	if int64(len(b)) > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body is larger than %d bytes (after decompression)", h.maxBody)
	}
	return b, 0, nil
}

func (h *httpHandler) traces(w http.ResponseWriter, req *http.Request) {
	enc, body, ok := h.request(w, req, contentProtobuf, contentJSON)
	if !ok {
		return
	}
	er := ptraceotlp.NewExportRequest()
	if err := unmarshal(enc, body, er.UnmarshalProto, er.UnmarshalJSON); err != nil {
		writeStatus(w, enc, http.StatusBadRequest, codes.InvalidArgument, "malformed OTLP traces: "+err.Error())
		return
	}
	rej, err := h.r.ExportTraces(req.Context(), er.Traces())
	if err != nil {
		h.exportFailed(w, enc, err)
		return
	}
	resp := ptraceotlp.NewExportResponse()
	if rej.Count > 0 {
		resp.PartialSuccess().SetRejectedSpans(rej.Count)
		resp.PartialSuccess().SetErrorMessage(rej.Message)
	}
	h.reply(w, enc, resp.MarshalProto, resp.MarshalJSON)
}

func (h *httpHandler) metrics(w http.ResponseWriter, req *http.Request) {
	enc, body, ok := h.request(w, req, contentProtobuf, contentJSON)
	if !ok {
		return
	}
	er := pmetricotlp.NewExportRequest()
	if err := unmarshal(enc, body, er.UnmarshalProto, er.UnmarshalJSON); err != nil {
		writeStatus(w, enc, http.StatusBadRequest, codes.InvalidArgument, "malformed OTLP metrics: "+err.Error())
		return
	}
	rej, err := h.r.ExportMetrics(req.Context(), er.Metrics())
	if err != nil {
		h.exportFailed(w, enc, err)
		return
	}
	resp := pmetricotlp.NewExportResponse()
	if rej.Count > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(rej.Count)
		resp.PartialSuccess().SetErrorMessage(rej.Message)
	}
	h.reply(w, enc, resp.MarshalProto, resp.MarshalJSON)
}

// zipkinSpans takes a Zipkin v2 JSON span list; it answers 202 as Zipkin does,
// and 400 naming the refused spans when some could not be stored.
func (h *httpHandler) zipkinSpans(w http.ResponseWriter, req *http.Request) {
	_, body, ok := h.request(w, req, contentJSON)
	if !ok {
		return
	}
	td, err := h.zipkin.UnmarshalTraces(body)
	if err != nil {
		writeStatus(w, contentJSON, http.StatusBadRequest, codes.InvalidArgument, "malformed Zipkin v2 JSON: "+err.Error())
		return
	}
	rej, err := h.r.ExportTraces(req.Context(), td)
	if err != nil {
		h.exportFailed(w, contentJSON, err)
		return
	}
	if rej.Count > 0 {
		msg := fmt.Sprintf("%d spans refused (the others were stored): %s", rej.Count, rej.Message)
		writeStatus(w, contentJSON, http.StatusBadRequest, codes.InvalidArgument, msg)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func unmarshal(enc encoding, body []byte, fromProto, fromJSON func([]byte) error) error {
	if enc == contentJSON {
		return fromJSON(body)
	}
	return fromProto(body)
}

func (h *httpHandler) reply(w http.ResponseWriter, enc encoding, toProto, toJSON func() ([]byte, error)) {
	marshal := toProto
	if enc == contentJSON {
		marshal = toJSON
	}
	b, err := marshal()
	if err != nil {
		h.log.Error("encode OTLP response", "err", err)
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(enc))
	_, _ = w.Write(b)
}

// exportFailed answers a failed export: 503 with Retry-After for back-pressure
// and shutdown, which OTLP clients retry, else 500.
func (h *httpHandler) exportFailed(w http.ResponseWriter, enc encoding, err error) {
	switch {
	case retryable(err):
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter.Seconds())))
		writeStatus(w, enc, http.StatusServiceUnavailable, codes.Unavailable, err.Error())
	case errors.Is(err, errTooLarge):
		writeStatus(w, enc, http.StatusRequestEntityTooLarge, codes.InvalidArgument, err.Error())
	default:
		h.log.Error("OTLP export failed", "err", err)
		writeStatus(w, enc, http.StatusInternalServerError, codes.Internal, "the data could not be stored")
	}
}

// WriteRefusal answers an OTLP/HTTP request that auth refused (an
// auth.RefusalWriter): a google.rpc.Status body in the request's encoding, with
// the gRPC code matching the HTTP status.
func WriteRefusal(w http.ResponseWriter, req *http.Request, status int, msg string) {
	code := codes.Unavailable
	switch status {
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	}
	enc := encoding(contentJSON)
	if ct, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err == nil && ct == contentProtobuf {
		enc = contentProtobuf
	}
	writeStatus(w, enc, status, code, msg)
}

// writeStatus answers with a google.rpc.Status body in the request's encoding,
// as OTLP/HTTP specifies for errors.
func writeStatus(w http.ResponseWriter, enc encoding, httpStatus int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var b []byte
	var err error
	if enc == contentProtobuf {
		b, err = proto.Marshal(st)
	} else {
		enc = contentJSON
		b, err = protojson.Marshal(st)
	}
	if err != nil {
		http.Error(w, msg, httpStatus)
		return
	}
	w.Header().Set("Content-Type", string(enc))
	w.WriteHeader(httpStatus)
	_, _ = w.Write(b)
}
