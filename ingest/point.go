// Package ingest is the write side of Amas: the point model and its validation,
// shared by every wire protocol, and the pipeline that batches points into
// PostgreSQL (parse -> validate -> resolve series -> batch -> COPY).
package ingest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Point is one sample of one series as it arrives on the wire.
type Point struct {
	Metric string
	// Tags may be shared with other points (decoders reuse the map of a tag set
	// seen before): read it, never change it.
	Tags  map[string]string
	Time  time.Time
	Value float64
}

// Limits bound what one point or request may carry.
type Limits struct {
	MaxTagsPerPoint int // OpenTSDB's default is 8; Amas allows more by default
	MaxNameLength   int // metric names, tag keys and tag values
}

// DefaultLimits are the limits used unless configured otherwise.
var DefaultLimits = Limits{MaxTagsPerPoint: 32, MaxNameLength: 256}

// ValidName reports whether s uses only the characters OpenTSDB allows in metric
// names, tag keys and tag values: letters (Unicode included), digits, '-', '_',
// '.' and '/'.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return validRunes(s[i:])
		}
		if !nameASCII[c] {
			return false
		}
	}
	return true
}

func validName(r rune) bool {
	return r == '-' || r == '_' || r == '.' || r == '/' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// nameASCII is validName for the ASCII characters, looked up per byte: names
// are checked for every point ingested.
var nameASCII = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = validName(rune(c))
	}
	return t
}()

func validRunes(s string) bool {
	for _, r := range s {
		if !validName(r) {
			return false
		}
	}
	return true
}

// Reasons a point is rejected, the label values of the rejected-points metrics.
const (
	ReasonMetric    = "invalid_metric"
	ReasonTag       = "invalid_tag"
	ReasonTooMany   = "too_many_tags"
	ReasonValue     = "invalid_value"
	ReasonTimestamp = "invalid_timestamp"
)

// RejectError is why a point was refused: a message in OpenTSDB's words and the
// reason it is counted under.
type RejectError struct {
	Reason  string
	Message string
}

func (e *RejectError) Error() string { return e.Message }

func reject(reason, format string, args ...any) error {
	return &RejectError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf is the reason err was rejected for, "malformed" when it does not say.
func ReasonOf(err error) string {
	var r *RejectError
	if errors.As(err, &r) {
		return r.Reason
	}
	return "malformed"
}

// checkName returns an OpenTSDB-worded error for an invalid name of the given kind
// ("metric name", "tag name", "tag value").
func (l Limits) checkName(reason, kind, s string) error {
	if s == "" {
		return reject(reason, "Empty string for %s", kind)
	}
	if len(s) > l.MaxNameLength {
		return reject(reason, "Invalid %s (\"%.40s...\"): longer than %d bytes", kind, s, l.MaxNameLength)
	}
	if !ValidName(s) {
		for _, r := range s {
			if !validName(r) {
				return reject(reason, "Invalid %s (\"%s\"): illegal character: %q", kind, s, r)
			}
		}
	}
	return nil
}

// Validate checks a point as OpenTSDB does, plus Amas's limits. The errors use
// OpenTSDB's words, since its clients show them to users.
func (l Limits) Validate(p Point) error {
	if err := l.checkName(ReasonMetric, "metric name", p.Metric); err != nil {
		return err
	}
	if len(p.Tags) == 0 {
		return reject(ReasonTag, "Need at least one tag (metric=%s)", p.Metric)
	}
	if len(p.Tags) > l.MaxTagsPerPoint {
		return reject(ReasonTooMany, "Too many tags: %d maximum allowed: %d", len(p.Tags), l.MaxTagsPerPoint)
	}
	// Of several bad tags, the one with the least key is reported, so the same
	// point always gets the same message whatever the map's order.
	var bad error
	badKey := ""
	for k, v := range p.Tags {
		err := l.checkName(ReasonTag, "tag name", k)
		if err == nil {
			err = l.checkName(ReasonTag, "tag value", v)
		}
		if err != nil && (bad == nil || k < badKey) {
			bad, badKey = err, k
		}
	}
	if bad != nil {
		return bad
	}
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return reject(ReasonValue, "Invalid value: %v (NaN and infinity are not stored)", p.Value)
	}
	if p.Time.IsZero() {
		return reject(ReasonTimestamp, "Missing timestamp")
	}
	return nil
}

// ParseTimestamp reads an OpenTSDB timestamp: seconds (up to 10 digits) or
// milliseconds (13 digits), with an optional decimal part for seconds with
// millisecond precision ("1356998400.123").
func ParseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, reject(ReasonTimestamp, "Missing timestamp")
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		secs, frac := s[:i], s[i+1:]
		if len(secs) == 0 || len(secs) > 10 || len(frac) == 0 || len(frac) > 3 || !digits(secs) || !digits(frac) {
			return time.Time{}, reject(ReasonTimestamp, "Invalid timestamp: %s", s)
		}
		for len(frac) < 3 {
			frac += "0"
		}
		return ParseTimestamp(secs + frac)
	}
	if !digits(s) {
		if strings.HasPrefix(s, "-") {
			return time.Time{}, reject(ReasonTimestamp, "Invalid timestamp: %s (negative)", s)
		}
		return time.Time{}, reject(ReasonTimestamp, "Invalid timestamp: %s", s)
	}
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
		if n > 1<<53 {
			return time.Time{}, reject(ReasonTimestamp, "Invalid timestamp: %s (too large)", s)
		}
	}
	return TimestampFromInt(n)
}

// TimestampFromInt interprets n as seconds when it has at most 10 digits and as
// milliseconds when it has 11 to 13, as OpenTSDB does.
func TimestampFromInt(n int64) (time.Time, error) {
	switch {
	case n < 0:
		return time.Time{}, reject(ReasonTimestamp, "Invalid timestamp: %d (negative)", n)
	case n <= 9_999_999_999:
		return time.Unix(n, 0).UTC(), nil
	case n <= 9_999_999_999_999:
		return time.UnixMilli(n).UTC(), nil
	default:
		return time.Time{}, reject(ReasonTimestamp, "Invalid timestamp: %d (more than 13 digits)", n)
	}
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
