// Package script runs tcollector-compatible script collectors: any executable
// in <dir>/<interval seconds>/ that prints "metric timestamp value tag=v ..."
// lines on stdout.
package script

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/ingest"
)

// MaxLineBytes is the longest line a script may print, the server's telnet limit.
const MaxLineBytes = 4096

// ParseLine reads one line in tcollector's format: metric, timestamp (seconds
// or milliseconds), value, then tags. A line without tags is valid: the agent
// adds the host tag.
func ParseLine(line string, limits ingest.Limits) (collector.Point, error) {
	if len(line) > MaxLineBytes {
		return collector.Point{}, fmt.Errorf("line longer than %d bytes", MaxLineBytes)
	}
	fields := strings.Fields(line)
	if len(fields) < 3 {
		return collector.Point{}, fmt.Errorf("want \"metric timestamp value [tag=value ...]\", got %d fields", len(fields))
	}
	ts, err := ingest.ParseTimestamp(fields[1])
	if err != nil {
		return collector.Point{}, err
	}
	value, err := strconv.ParseFloat(fields[2], 64)
	if err != nil {
		return collector.Point{}, fmt.Errorf("value %q is not a number", fields[2])
	}
	tags, err := parseTags(fields[3:])
	if err != nil {
		return collector.Point{}, err
	}
	p := collector.Point{Metric: fields[0], Time: ts, Value: value, Tags: tags}
	if err := validateWithHost(p, limits); err != nil {
		return collector.Point{}, err
	}
	return p, nil
}

func parseTags(fields []string) (map[string]string, error) {
	tags := make(map[string]string, len(fields)+1) // +1: the host tag the agent adds
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("tag %q is not key=value", f)
		}
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("tag %q given twice", k)
		}
		tags[k] = v
	}
	return tags, nil
}

// validateWithHost lets a tagless line pass the "at least one tag" rule (the
// agent adds host=) while counting toward the tag limit as it will. The tag
// map is the line's own, so a placeholder is put in and taken out again.
func validateWithHost(p collector.Point, limits ingest.Limits) error {
	if _, ok := p.Tags["host"]; !ok {
		p.Tags["host"] = "host"
		defer delete(p.Tags, "host")
	}
	return limits.Validate(ingest.Point{Metric: p.Metric, Tags: p.Tags, Time: p.Time, Value: p.Value})
}
