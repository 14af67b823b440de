package agent

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector"
)

// TestEncodeBatch: the hand-written body decodes, with encoding/json, to the
// points it was made of, and its numbers are written as encoding/json writes
// them.
func TestEncodeBatch(t *testing.T) {
	at := time.Unix(1700000000, 0)
	batch := []collector.Point{
		{Metric: "sys.cpu.user", Time: at, Value: 42.5, Tags: map[string]string{"host": "web-1", "cpu": "0"}},
		{Metric: "ms.timestamp", Time: at.Add(250 * time.Millisecond), Value: -3, Tags: map[string]string{"host": "h"}},
		{Metric: "tiny", Time: at, Value: 1e-7, Tags: map[string]string{"host": "h"}},
		{Metric: "huge", Time: at, Value: 1.5e300, Tags: map[string]string{"host": "h"}},
		{Metric: "big.int", Time: at, Value: 1 << 53, Tags: map[string]string{"host": "h"}},
		{Metric: "zero", Time: at, Value: 0, Tags: map[string]string{"host": "h"}},
		{Metric: "unicode.名前", Time: at, Value: 1, Tags: map[string]string{"host": "서버", "k/v": "a.b_c-d"}},
		{Metric: `quote"back\slash`, Time: at, Value: 1, Tags: map[string]string{"ctl": "tab\tnl\n"}},
		{Metric: "no.tags", Time: at, Value: 1},
	}
	body, err := EncodeBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(body)
	if err != nil {
		t.Fatalf("the body is not gzip JSON: %v", err)
	}
	if len(got) != len(batch) {
		t.Fatalf("%d points decoded, want %d", len(got), len(batch))
	}
	for i, p := range batch {
		want := putPoint{Metric: p.Metric, Timestamp: opentsdbTimestamp(p.Time), Value: p.Value, Tags: p.Tags}
		if want.Tags == nil {
			want.Tags = map[string]string{}
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("point %d decoded as %+v, want %+v", i, got[i], want)
		}
	}
	if got[1].Timestamp != 1700000000250 {
		t.Errorf("a timestamp with milliseconds encoded as %d, want milliseconds", got[1].Timestamp)
	}

	for _, v := range []float64{0, 1, -1, 42.5, 1e-7, 1e-6, 123456789012345678, 1e20, 1e21, 1.5e300, -2.5e-10, math.SmallestNonzeroFloat64, math.MaxFloat64} {
		want, _ := json.Marshal(v)
		if got := string(appendJSONFloat(nil, v)); got != string(want) {
			t.Errorf("%v encoded as %s, encoding/json writes %s", v, got, want)
		}
	}
	for _, s := range []string{"plain", `a"b`, `a\b`, "\x00\x1f", "名前"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != s {
			t.Errorf("%q encoded as %s, reads back as %q (%v)", s, appendJSONString(nil, s), back, err)
		}
	}
	if _, err := EncodeBatch([]collector.Point{{Metric: "bad", Time: at, Value: math.NaN()}}); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("NaN: %v, want an error naming the point", err)
	}
}

// TestBatcher: the host and global tags are added (a collector's own host tag
// wins, as in tcollector), points the server would refuse are counted and not
// queued, and a full batch is flushed at once.
func TestBatcher(t *testing.T) {
	var flushed [][]collector.Point
	b := NewBatcher("h1", map[string]string{"env": "prod", "dc": "eu"}, 3, func(batches [][]collector.Point) error {
		flushed = append(flushed, batches...)
		return nil
	})
	at := time.Unix(1700000000, 0)
	add := func(p collector.Point) error {
		t.Helper()
		p.Time = at
		return b.Add(p)
	}
	if err := add(collector.Point{Metric: "a", Value: 1, Tags: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := add(collector.Point{Metric: "remote", Value: 2, Tags: map[string]string{"host": "db-7", "env": "staging"}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []collector.Point{
		{Metric: "bad metric", Value: 1},
		{Metric: "nan", Value: math.NaN()},
		{Metric: "bad.tag", Value: 1, Tags: map[string]string{"k": "a b"}},
	} {
		if err := add(bad); err == nil || !strings.Contains(err.Error(), bad.Metric) {
			t.Errorf("point %+v: %v, want an error naming it", bad, err)
		}
	}
	if b.Invalid() != 3 || len(flushed) != 0 {
		t.Fatalf("invalid %d, flushes %d: want 3 invalid and nothing flushed yet", b.Invalid(), len(flushed))
	}
	if err := add(collector.Point{Metric: "c", Value: 3}); err != nil {
		t.Fatal(err)
	}
	if len(flushed) != 1 || len(flushed[0]) != 3 {
		t.Fatalf("flushes %v: want one batch of 3 once the batch is full", flushed)
	}
	wantTags := []map[string]string{
		{"host": "h1", "env": "prod", "dc": "eu", "k": "v"},
		{"host": "db-7", "env": "staging", "dc": "eu"},
		{"host": "h1", "env": "prod", "dc": "eu"},
	}
	for i, p := range flushed[0] {
		if !reflect.DeepEqual(p.Tags, wantTags[i]) {
			t.Errorf("point %s tags %v, want %v", p.Metric, p.Tags, wantTags[i])
		}
	}
	if err := b.Flush(); err != nil || len(flushed) != 1 {
		t.Fatalf("flushing an empty batcher: %v, %d flushes", err, len(flushed))
	}
}

// TestBatcherRun: while Run writes, a slow flush (an fsync) does not hold up
// the collectors until pendingBatches are waiting; then Add waits. The batches
// that filled meanwhile are flushed together, every point in order, and the
// partial batch is flushed when Run stops.
func TestBatcherRun(t *testing.T) {
	entered, gate := make(chan struct{}, 10), make(chan struct{})
	var calls [][][]collector.Point
	b := NewBatcher("h1", nil, 2, func(batches [][]collector.Point) error {
		calls = append(calls, batches)
		entered <- struct{}{}
		if len(calls) == 1 {
			<-gate
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx, time.Hour, func(err error) { t.Errorf("flush: %v", err) })
	}()
	eventually(t, "Run is writing", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.running
	})
	next := 0
	add := func(n int) {
		for range n {
			if err := b.Add(collector.Point{Metric: "m", Time: time.Unix(1700000000, 0), Value: float64(next)}); err != nil {
				t.Error(err)
			}
			next++
		}
	}
	add(2)
	<-entered // the writer is stuck in the flush of the first batch
	add(2 * pendingBatches)
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		add(2) // one batch too many
	}()
	select {
	case <-blocked:
		t.Fatalf("Add returned with %d full batches waiting, want it to wait", pendingBatches+1)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	<-blocked
	<-entered
	add(1) // partial: flushed when Run stops
	cancel()
	<-done

	if len(calls) != 3 || len(calls[0]) != 1 || len(calls[1]) != pendingBatches+1 || len(calls[2]) != 1 || len(calls[2][0]) != 1 {
		sizes := make([]int, len(calls))
		for i, c := range calls {
			sizes[i] = len(c)
		}
		t.Fatalf("flush calls of %v batches: want 1, then the %d that filled meanwhile, then the partial one", sizes, pendingBatches+1)
	}
	var got []float64
	for _, c := range calls {
		for _, batch := range c {
			for _, p := range batch {
				got = append(got, p.Value)
			}
		}
	}
	if !slices.Equal(got, seq32(next)) {
		t.Fatalf("points flushed %v, want 0..%d in order", got, next-1)
	}
}
