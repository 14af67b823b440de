package opentsdb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/amas-eye/amas/ingest"
)

// ParsePutLine parses a telnet put command, "put <metric> <timestamp> <value>
// <tagk=tagv>...", fields separated by spaces or tabs (runs of them allowed),
// and validates the point. Errors read as OpenTSDB's PutDataPointRpc writes
// them after "put: ".
//
// The fields are found by scanning the line in place: the point's strings share
// the line's memory, so a point costs its tag map and nothing else.
func ParsePutLine(line string, limits ingest.Limits) (ingest.Point, error) {
	return parsePutLine(line, limits, nil)
}

// parsePutLine is ParsePutLine taking the tags map of a tag set written the same
// way before from cache (nil: none).
func parsePutLine(line string, limits ingest.Limits, cache *tagCache) (ingest.Point, error) {
	cmd, rest := nextField(line)
	if cmd != "put" {
		return ingest.Point{}, fmt.Errorf("not a put command: %.40q", line)
	}
	metric, rest := nextField(rest)
	ts, rest := nextField(rest)
	value, rest := nextField(rest)
	tags := trimBlanks(rest)
	if tags == "" {
		// OpenTSDB refuses a point without tags, and Amas keeps the rule: a
		// client moving between the two sees the same data accepted.
		return ingest.Point{}, fmt.Errorf("illegal argument: not enough arguments (need least 4, got %d)", countFields(metric, ts, value))
	}
	p := ingest.Point{Metric: metric}
	var err error
	if p.Time, err = ingest.ParseTimestamp(ts); err != nil {
		return ingest.Point{}, fmt.Errorf("illegal argument: %w", err)
	}
	if p.Value, err = parseValue(value); err != nil {
		return ingest.Point{}, fmt.Errorf("illegal argument: %w", err)
	}
	if p.Tags, err = cachedTagsOf(tags, cache); err != nil {
		return ingest.Point{}, err
	}
	if err := limits.Validate(p); err != nil {
		return ingest.Point{}, fmt.Errorf("illegal argument: %w", err)
	}
	return p, nil
}

// cachedTagsOf is parseTags of text, or the map cache holds for the same text.
// Only tag sets that parse are cached, so a hit needs no checks.
func cachedTagsOf(text string, cache *tagCache) (map[string]string, error) {
	if cache == nil {
		return parseTags(text)
	}
	slot, tags := cache.slotString(text)
	if tags != nil {
		return tags, nil
	}
	tags, err := parseTags(text)
	if err == nil {
		slot.Store(&cachedTags{text: strings.Clone(text), tags: tags})
	}
	return tags, err
}

// parseTags reads "k=v k=v ..." into a new map.
func parseTags(text string) (map[string]string, error) {
	n := 0
	for rest := text; ; n++ {
		var f string
		if f, rest = nextField(rest); f == "" {
			break
		}
	}
	tags := make(map[string]string, n)
	for rest := text; ; {
		var tag string
		if tag, rest = nextField(rest); tag == "" {
			return tags, nil
		}
		k, v, ok := strings.Cut(tag, "=")
		if !ok || k == "" || v == "" {
			return nil, &ingest.RejectError{Reason: ingest.ReasonTag,
				Message: "illegal argument: invalid tag: " + tag}
		}
		if _, dup := tags[k]; dup {
			return nil, &ingest.RejectError{Reason: ingest.ReasonTag,
				Message: "illegal argument: duplicate tag: " + tag + ", tags=" + text}
		}
		tags[k] = v
	}
}

// nextField returns the first blank-separated field of s and what follows it,
// as OpenTSDB's Tags.splitString on ' ' does once empty words are dropped.
func nextField(s string) (field, rest string) {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isBlank(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func trimBlanks(s string) string {
	for s != "" && isBlank(s[0]) {
		s = s[1:]
	}
	for s != "" && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func countFields(fields ...string) int {
	n := 0
	for _, f := range fields {
		if f != "" {
			n++
		}
	}
	return n
}

// parseValue reads an integer or a floating-point value; NaN and infinities are
// refused, as OpenTSDB refuses them.
func parseValue(s string) (float64, error) {
	if looksLikeInteger(s) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return float64(n), nil
		}
		// Too large for int64: OpenTSDB would refuse it, a float64 holds it.
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !isFinite(v) || !looksNumeric(s) {
		return 0, &ingest.RejectError{Reason: ingest.ReasonValue, Message: "invalid value: " + s}
	}
	return v, nil
}

func isFinite(v float64) bool { return v-v == 0 }

// looksLikeInteger is OpenTSDB's Tags.looksLikeInteger: an optional sign and
// digits only.
func looksLikeInteger(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// looksNumeric refuses the spellings ParseFloat accepts that OpenTSDB does not:
// "Inf", "NaN", hexadecimal and underscores.
func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}
