// Package otlp receives OpenTelemetry data: the OTLP trace and metrics export
// services over gRPC and over HTTP (/v1/traces, /v1/metrics; protobuf or JSON,
// optionally gzip-compressed), and Zipkin v2 JSON spans at /api/v2/spans, which
// the OpenTelemetry contrib Zipkin translator turns into OTLP traces.
//
// Spans are converted to store.Span rows and committed in batches by a
// SpanPipeline; committed spans feed the RED aggregator, which writes request
// counts, error counts and duration percentiles per service and operation as
// ordinary metric series through the ingest pipeline. OTLP metrics become metric
// points on the same pipeline.
//
// Naming convention of OTLP metrics (see ConvertMetrics):
//
//   - the metric name is the OTLP name with every character outside the OpenTSDB
//     set (letters, digits, '-', '_', '.', '/') replaced by '_';
//   - gauges and sums store their value under that name (monotonic cumulative sums
//     are counters: query them with rate);
//   - histograms store <name>.count, <name>.sum, <name>.min, <name>.max,
//     <name>.bucket (cumulative count, tag le=<upper bound> or le=inf) and the
//     estimated <name>.p50, <name>.p95 and <name>.p99 (of a cumulative
//     histogram: of the observations since its previous export, see
//     HistogramWindows);
//   - exponential histograms store <name>.count, <name>.sum, <name>.min,
//     <name>.max and the estimated percentiles;
//   - summaries store <name>.count, <name>.sum and <name> with tag quantile=<q>;
//   - tags are the resource attributes and the data point's attributes (the data
//     point wins), keys and values sanitized like names, empty values dropped; a
//     point with no attribute at all gets source=otlp, since every series needs a
//     tag.
//
// A success reply means every accepted span and point is committed. A full
// queue is answered with retryable back-pressure (gRPC UNAVAILABLE with
// RetryInfo, HTTP 503 with Retry-After); spans and points that cannot be stored
// are counted in the OTLP partial success with a message naming the first one.
package otlp
