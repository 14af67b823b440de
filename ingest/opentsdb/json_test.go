package opentsdb

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/amas-eye/amas/ingest"
)

func TestDecodeJSON(t *testing.T) {
	limits := ingest.Limits{MaxTagsPerPoint: 2, MaxNameLength: 16}
	for _, tc := range []struct {
		name    string
		body    string
		want    []ingest.Point
		errs    []string // each refused point's error, in order
		reasons []string
		err     string // substring of the error for the whole body
	}{
		{name: "one object",
			body: `{"metric":"sys.cpu","timestamp":1356998400,"value":42.5,"tags":{"host":"a"}}`,
			want: []ingest.Point{{Metric: "sys.cpu", Time: time.Unix(1356998400, 0).UTC(), Value: 42.5, Tags: map[string]string{"host": "a"}}}},
		{name: "array with string numbers and milliseconds",
			body: ` [{"metric":"m","timestamp":"1356998400500","value":"1.5e3","tags":{"host":"a"}},
			        {"metric":"m","timestamp":1356998400.25,"value":-3,"tags":{"host":"b"}}] `,
			want: []ingest.Point{
				{Metric: "m", Time: time.UnixMilli(1356998400500).UTC(), Value: 1500, Tags: map[string]string{"host": "a"}},
				{Metric: "m", Time: time.UnixMilli(1356998400250).UTC(), Value: -3, Tags: map[string]string{"host": "b"}},
			}},
		{name: "escaped strings",
			body: `{"metric":"\u0041.b","timestamp":"1356998400","value":"4\u0032","tags":{"h":"\u00e9t\u00e9"}}`,
			want: []ingest.Point{{Metric: "A.b", Time: time.Unix(1356998400, 0).UTC(), Value: 42, Tags: map[string]string{"h": "été"}}}},
		{name: "unicode names",
			body: `{"metric":"温度","timestamp":1356998400,"value":1,"tags":{"地点":"北京"}}`,
			want: []ingest.Point{{Metric: "温度", Time: time.Unix(1356998400, 0).UTC(), Value: 1, Tags: map[string]string{"地点": "北京"}}}},
		{name: "each refusal in OpenTSDB's words",
			body: `[{"timestamp":1356998400,"value":1,"tags":{"h":"a"}},
			        {"metric":"m","timestamp":0,"value":1,"tags":{"h":"a"}},
			        {"metric":"m","timestamp":"soon","value":1,"tags":{"h":"a"}},
			        {"metric":"m","timestamp":1356998400,"tags":{"h":"a"}},
			        {"metric":"m","timestamp":1356998400,"value":1},
			        {"metric":"m","timestamp":1356998400,"value":"NaN","tags":{"h":"a"}},
			        {"metric":"m","timestamp":1356998400,"value":1e999,"tags":{"h":"a"}},
			        {"metric":"m!","timestamp":1356998400,"value":1,"tags":{"h":"a"}},
			        {"metric":"m","timestamp":1356998400,"value":1,"tags":{"h":"a b"}},
			        {"metric":"m","timestamp":1356998400,"value":1,"tags":{"a":"1","b":"2","c":"3"}},
			        {"metric":"m","timestamp":1356998400,"value":1,"tags":"h=a"}]`,
			errs: []string{
				"Metric name was empty",
				"Invalid timestamp",
				"Invalid timestamp",
				"Empty value",
				"Missing tags",
				"Unable to parse value to a number",
				"Unable to parse value to a number",
				`Invalid metric name ("m!"): illegal character: '!'`,
				`Invalid tag value ("a b"): illegal character: ' '`,
				"Too many tags: 3 maximum allowed: 2",
				`Unable to parse the data point: field "tags" must be a map[string]string, not a JSON string`,
			},
			reasons: []string{
				ingest.ReasonMetric, ingest.ReasonTimestamp, ingest.ReasonTimestamp, ingest.ReasonValue,
				ingest.ReasonTag, ingest.ReasonValue, ingest.ReasonValue, ingest.ReasonMetric, ingest.ReasonTag,
				ingest.ReasonTooMany, reasonMalformed,
			}},
		{name: "empty body", body: " ", err: "the request body is empty"},
		{name: "empty array", body: "[]", err: "No datapoints found in content"},
		{name: "truncated", body: `[{"metric":"m"`, err: "unable to parse the request body as JSON"},
		{name: "a number", body: `42`, err: `want an object or an array, found '4'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pts, errs, err := decodeJSONBody([]byte(tc.body), limits, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(pts) != len(tc.want) {
				t.Fatalf("got %d points %+v, want %d", len(pts), pts, len(tc.want))
			}
			for i, p := range pts {
				w := tc.want[i]
				if p.Metric != w.Metric || !p.Time.Equal(w.Time) || p.Value != w.Value || !sameTags(p.Tags, w.Tags) {
					t.Errorf("point %d: got %+v, want %+v", i, p, w)
				}
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("got %d refusals %+v, want %d", len(errs), errs, len(tc.errs))
			}
			for i, e := range errs {
				if e.Error != tc.errs[i] || e.reason != tc.reasons[i] {
					t.Errorf("refusal %d: %q (%s), want %q (%s)", i, e.Error, e.reason, tc.errs[i], tc.reasons[i])
				}
				if !json.Valid(e.Datapoint) {
					t.Errorf("refusal %d echoes invalid JSON %s", i, e.Datapoint)
				}
			}
		})
	}
}

// FuzzDecodeJSON checks that any body either fails as a whole or splits into
// points that pass validation and refusals that say why.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(`[{"metric":"sys.cpu.user","timestamp":1356998400,"value":42.5,"tags":{"host":"web01"}}]`)
	// Shapes at the edge of what scanPuts takes, so the comparison below starts there.
	for _, seed := range []string{
		` { "metric" : "m", "timestamp" : "1356998400.5", "value" : "-1e-3", "tags" : { "a" : "b" , "a" : "c" } } `,
		`[]`, `[{}]`, `{}`, `[{"metric":"m"},]`, `[{"metric":"m","metric":"n"}]`,
		`[{"metric":"m","tags":{"a":"b"},"tags":{"c":"d"}}]`, `[{"Metric":"m"}]`, `[{"metric":"m","extra":1}]`,
		`[{"metric":"m\u0041","value":01}]`, `[{"metric":null,"value":1.}]`, `[{"metric":"é","value":-0.0E+5}]`,
		`[{"metric":"m","timestamp":1356998400,"value":1,"tags":{}}] x`,
	} {
		f.Add(seed)
	}
	limits := ingest.DefaultLimits
	f.Fuzz(func(t *testing.T, body string) {
		// The fast scanner must read exactly what the general decoder reads, also
		// with its tag maps from the cache (the second pass finds them there).
		cache := newTagCache()
		for pass := range 2 {
			fast, ok := scanPuts(bytes.TrimSpace([]byte(body)), cache)
			if !ok {
				break
			}
			general, err := decodeGeneral([]byte(body))
			if err != nil {
				t.Fatalf("scanPuts took a body the general decoder refuses (%v)", err)
			}
			if !reflect.DeepEqual(fast, general) {
				t.Fatalf("pass %d: scanPuts read %+v, the general decoder %+v", pass, fast, general)
			}
		}
		pts, errs, err := decodeJSONBody([]byte(body), limits, nil)
		if err != nil {
			if len(pts) > 0 || len(errs) > 0 {
				t.Fatalf("failed body also returned %d points and %d refusals", len(pts), len(errs))
			}
			return
		}
		for _, p := range pts {
			if err := limits.Validate(p); err != nil {
				t.Fatalf("accepted an invalid point %+v: %v", p, err)
			}
		}
		for _, e := range errs {
			if e.Error == "" || e.reason == "" || !json.Valid(e.Datapoint) {
				t.Fatalf("refusal without a reason or with invalid datapoint JSON: %+v", e)
			}
		}
	})
}

// decodeGeneral decodes a body with the general JSON decoder (the one
// decodeJSONBody falls back to) alone.
func decodeGeneral(body []byte) ([]jsonPoint, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		batch := make([]jsonPoint, 1)
		return batch, gojson.Unmarshal(body, &batch[0])
	}
	var batch []jsonPoint
	return batch, gojson.Unmarshal(body, &batch)
}
