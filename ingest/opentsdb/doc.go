// Package opentsdb speaks OpenTSDB's write protocols, so that tcollector, the
// OpenTSDB clients and anything else that writes to OpenTSDB can point at Amas
// unchanged:
//
//   - telnet-style TCP: "put <metric> <timestamp> <value> <tagk=tagv>..." lines
//     (TCPServer), and
//   - HTTP POST /api/put with one JSON data point or an array (NewHTTPHandler).
//
// Points are checked by ingest.Limits.Validate, whose messages are OpenTSDB's,
// and handed to the write pipeline. Over HTTP a 2xx always means committed: the
// handler waits for the pipeline's commit, so OpenTSDB's ?sync is accepted and
// changes nothing. Over TCP nothing is acknowledged (as in OpenTSDB); a full
// write queue stops the connection's reads, which is how a telnet client is
// pushed back. Connections from untrusted networks send "auth <token>" first,
// answered AUTH_SUCCESS or AUTH_FAIL as OpenTSDB 2.3+ answers its auth command.
package opentsdb

import "github.com/prometheus/client_golang/prometheus"

// RejectedPoints counts the points refused by either protocol, by reason (see
// the ingest.Reason* constants, plus "malformed", "line_too_long",
// "overloaded" and "unauthorized"). It is shared by the HTTP handler and the
// TCP server, whose constructors take no registerer for it: the application
// registers it once, reg.MustRegister(opentsdb.RejectedPoints).
var RejectedPoints = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "amas_ingest_rejected_points_total",
	Help: "Points refused by the OpenTSDB protocols, by protocol and reason.",
}, []string{"protocol", "reason"})

const (
	protoHTTP   = "http"
	protoTelnet = "telnet"

	reasonMalformed    = "malformed"
	reasonLineTooLong  = "line_too_long"
	reasonOverloaded   = "overloaded"
	reasonUnauthorized = "unauthorized"
)
