// Package points is the small helper the built-in collectors use to emit
// points that share a timestamp and a set of base tags.
package points

import (
	"maps"
	"strings"
	"time"
	"unicode"

	"github.com/amas-eye/amas/collector"
)

// Writer emits points stamped with Time and carrying Tags plus the tags given
// per point.
type Writer struct {
	Emit collector.Emit
	Time time.Time
	Tags map[string]string
}

// Add emits metric=value with the base tags and the extra tags given as
// key, value pairs. Names and tags are made valid for the server (see Clean);
// a tag with an empty value is left out, as Prometheus treats an empty label.
func (w Writer) Add(metric string, value float64, kv ...string) {
	tags := make(map[string]string, len(w.Tags)+len(kv)/2)
	for k, v := range w.Tags {
		if v != "" {
			tags[Clean(k)] = Clean(v)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			tags[Clean(kv[i])] = Clean(kv[i+1])
		}
	}
	w.Emit(collector.Point{Metric: Clean(metric), Time: w.Time, Value: value, Tags: tags})
}

// Clean replaces the characters the server refuses in metric names and tags
// (it accepts letters, digits, '-', '_', '.' and '/', as OpenTSDB does) with
// '_', so that a mount point with a space or a Prometheus name with a colon
// still arrives instead of failing the whole batch.
func Clean(s string) string {
	if valid(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if validRune(r) {
			return r
		}
		return '_'
	}, s)
}

func valid(s string) bool {
	for _, r := range s {
		if !validRune(r) {
			return false
		}
	}
	return true
}

func validRune(r rune) bool {
	return r == '-' || r == '_' || r == '.' || r == '/' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// With returns a Writer whose base tags also hold the given pairs.
func (w Writer) With(kv ...string) Writer {
	tags := make(map[string]string, len(w.Tags)+len(kv)/2)
	maps.Copy(tags, w.Tags)
	for i := 0; i+1 < len(kv); i += 2 {
		tags[kv[i]] = kv[i+1]
	}
	w.Tags = tags
	return w
}
