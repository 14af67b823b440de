package opentsdb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/amas-eye/amas/ingest"
)

// ParsePutLine parses a telnet put command, "put <metric> <timestamp> <value>
// <tagk=tagv>...", fields separated by spaces (runs of them allowed), and
// validates the point. Errors read as OpenTSDB's.
func ParsePutLine(line string, limits ingest.Limits) (ingest.Point, error) {
	var words [64]string // the command, three fields and up to 60 tags without allocating
	fields := splitFields(line, words[:0])
	if len(fields) == 0 || fields[0] != "put" {
		return ingest.Point{}, fmt.Errorf("not a put command: %.40q", line)
	}
	if len(fields) < 5 {
		return ingest.Point{}, fmt.Errorf("illegal argument: not enough arguments (need least 4, got %d)", len(fields)-1)
	}
	p := ingest.Point{Metric: fields[1]}
	var err error
	if p.Time, err = ingest.ParseTimestamp(fields[2]); err != nil {
		return ingest.Point{}, fmt.Errorf("illegal argument: %w", err)
	}
	if p.Value, err = parseValue(fields[3]); err != nil {
		return ingest.Point{}, fmt.Errorf("illegal argument: %w", err)
	}
	p.Tags = make(map[string]string, len(fields)-4)
	for _, tag := range fields[4:] {
		k, v, ok := strings.Cut(tag, "=")
		if !ok || k == "" || v == "" {
			return ingest.Point{}, &ingest.RejectError{Reason: ingest.ReasonTag,
				Message: fmt.Sprintf("illegal argument: invalid tag: %s", tag)}
		}
		if _, dup := p.Tags[k]; dup {
			return ingest.Point{}, &ingest.RejectError{Reason: ingest.ReasonTag,
				Message: fmt.Sprintf("illegal argument: duplicate tag: %s, tags=%s", tag, strings.Join(fields[4:], " "))}
		}
		p.Tags[k] = v
	}
	if err := limits.Validate(p); err != nil {
		return ingest.Point{}, fmt.Errorf("illegal argument: %w", err)
	}
	return p, nil
}

// splitFields appends the space-separated fields of s to dst, as OpenTSDB's
// Tags.splitString on ' ' does after it trims the line.
func splitFields(s string, dst []string) []string {
	for {
		for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
			s = s[1:]
		}
		if s == "" {
			return dst
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i])
		s = s[i:]
	}
}

// parseValue reads an integer or a floating-point value; NaN and infinities are
// refused, as OpenTSDB refuses them.
func parseValue(s string) (float64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return float64(n), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !isFinite(v) || !looksNumeric(s) {
		return 0, &ingest.RejectError{Reason: ingest.ReasonValue, Message: fmt.Sprintf("invalid value: %s", s)}
	}
	return v, nil
}

func isFinite(v float64) bool { return v-v == 0 }

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
