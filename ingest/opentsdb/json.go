package opentsdb

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/amas-eye/amas/ingest"
)

// jsonPoint is a data point of /api/put as sent.
type jsonPoint struct {
	Metric    string            `json:"metric"`
	Timestamp jsonScalar        `json:"timestamp"`
	Value     jsonScalar        `json:"value"`
	Tags      map[string]string `json:"tags"`
}

// jsonScalar is a timestamp or a value as sent: OpenTSDB takes both as JSON
// numbers or as strings, so the JSON text is kept, parsed when the point is
// checked and echoed unchanged in ?details. One string per field is the only
// allocation.
type jsonScalar struct{ raw string }

func (s *jsonScalar) UnmarshalJSON(b []byte) error {
	s.raw = string(b)
	return nil
}

func (s jsonScalar) MarshalJSON() ([]byte, error) {
	if s.raw == "" {
		return []byte("null"), nil
	}
	return []byte(s.raw), nil
}

// text is a JSON number's text or a JSON string's content; ok is false for
// anything else (absent, null, booleans, objects).
func (s jsonScalar) text() (string, bool) {
	switch r := s.raw; {
	case r == "":
		return "", false
	case r[0] == '"':
		if !strings.ContainsRune(r, '\\') {
			return r[1 : len(r)-1], true
		}
		return unquote(r)
	case r[0] == '-' || (r[0] >= '0' && r[0] <= '9'):
		return r, true
	}
	return "", false
}

// PointError is a refused data point of an /api/put body: the point as sent and
// why, as OpenTSDB's ?details lists them.
type PointError struct {
	Datapoint json.RawMessage `json:"datapoint"`
	Error     string          `json:"error"`
	reason    string
}

// decodeJSONBody decodes an /api/put body: one data point object or an array of
// them. Valid points are returned in order; each invalid one becomes a
// PointError and does not stop the others. err is set only when the body is not
// JSON of that shape, and then nothing is returned. Tag sets found in cache
// (nil: none) share its maps.
func decodeJSONBody(body []byte, limits ingest.Limits, cache *tagCache) (pts []ingest.Point, errs []PointError, err error) {
	body = bytes.TrimSpace(body)
	batch, scanned := scanPuts(body, cache)
	switch {
	case scanned:
	case len(body) == 0:
		return nil, nil, errors.New("the request body is empty; send a data point object or an array of them")
	case body[0] == '[':
		if err := json.Unmarshal(body, &batch); err != nil {
			return decodeEach(body, limits, err)
		}
	case body[0] == '{':
		batch = make([]jsonPoint, 1)
		if err := json.Unmarshal(body, &batch[0]); err != nil {
			return decodeEach(body, limits, err)
		}
	default:
		return nil, nil, fmt.Errorf("unable to parse the request body as JSON: want an object or an array, found %q", body[0])
	}
	if len(batch) == 0 {
		return nil, nil, errors.New("No datapoints found in content")
	}
	pts = make([]ingest.Point, 0, len(batch))
	for i := range batch {
		p, err := batch[i].point(limits)
		if err != nil {
			sent, _ := json.Marshal(&batch[i])
			errs = append(errs, PointError{Datapoint: sent, Error: err.Error(), reason: ingest.ReasonOf(err)})
			continue
		}
		pts = append(pts, p)
	}
	return pts, errs, nil
}

// decodeEach is the slow path for a body that failed to decode as a whole: if
// it is valid JSON whose elements only have fields of the wrong type, each
// element is decoded on its own so that only the bad ones are refused.
func decodeEach(body []byte, limits ingest.Limits, whole error) ([]ingest.Point, []PointError, error) {
	var raw []json.RawMessage
	if body[0] == '{' {
		raw = []json.RawMessage{body}
	} else if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, fmt.Errorf("unable to parse the request body as JSON: %s", jsonMessage(whole))
	}
	var pts []ingest.Point
	var errs []PointError
	for _, msg := range raw {
		var jp jsonPoint
		if err := json.Unmarshal(msg, &jp); err != nil {
			if !json.Valid(msg) {
				return nil, nil, fmt.Errorf("unable to parse the request body as JSON: %s", jsonMessage(err))
			}
			errs = append(errs, PointError{Datapoint: msg, Error: "Unable to parse the data point: " + jsonMessage(err), reason: reasonMalformed})
			continue
		}
		p, err := jp.point(limits)
		if err != nil {
			errs = append(errs, PointError{Datapoint: msg, Error: err.Error(), reason: ingest.ReasonOf(err)})
			continue
		}
		pts = append(pts, p)
	}
	return pts, errs, nil
}

// point checks jp in the order OpenTSDB's PutDataPointRpc does, with its messages.
func (jp *jsonPoint) point(limits ingest.Limits) (ingest.Point, error) {
	reject := func(reason, msg string) (ingest.Point, error) {
		return ingest.Point{}, &ingest.RejectError{Reason: reason, Message: msg}
	}
	if jp.Metric == "" {
		return reject(ingest.ReasonMetric, "Metric name was empty")
	}
	ts, ok := jp.Timestamp.text()
	if !ok || ts == "" {
		return reject(ingest.ReasonTimestamp, "Invalid timestamp")
	}
	t, err := ingest.ParseTimestamp(ts)
	if err != nil || t.Unix() <= 0 {
		return reject(ingest.ReasonTimestamp, "Invalid timestamp")
	}
	v, ok := jp.Value.text()
	if !ok || v == "" {
		return reject(ingest.ReasonValue, "Empty value")
	}
	if len(jp.Tags) == 0 {
		// OpenTSDB refuses a point without tags, and Amas keeps the rule: a
		// client moving between the two sees the same data accepted.
		return reject(ingest.ReasonTag, "Missing tags")
	}
	value, err := parseValue(v)
	if err != nil {
		return reject(ingest.ReasonValue, "Unable to parse value to a number")
	}
	p := ingest.Point{Metric: jp.Metric, Tags: jp.Tags, Time: t, Value: value}
	if err := limits.Validate(p); err != nil {
		return ingest.Point{}, err
	}
	return p, nil
}

// unquote decodes a JSON string with escapes.
func unquote(quoted string) (string, bool) {
	var s string
	if json.Unmarshal([]byte(quoted), &s) != nil {
		return "", false
	}
	return s, true
}

// jsonMessage shortens encoding/json's errors to what a client can act on.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be a %s, not a JSON %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}
