package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/ingest"
)

// pendingBatches is how many full batches may wait for the writer before Add
// waits too: back-pressure on the collectors, and a bound on memory.
const pendingBatches = 4

// Batcher adds the host and global tags to every point, refuses the points the
// server would refuse, and groups the rest into batches that it hands, in
// order, to its flush function (the spool, or stdout for --dry-run).
//
// While Run runs, full batches are written by Run's goroutine, so a collector
// (a script printing thousands of lines) keeps going while the previous batch
// is encoded and fsynced, and the batches that filled meanwhile are flushed
// together (one fsync for all). Without Run (--once), Add flushes a full
// batch itself.
type Batcher struct {
	limits ingest.Limits
	flush  func(batches [][]collector.Point) error

	flushMu sync.Mutex // held from taking batches to having flushed them: batches leave in order
	mu      sync.Mutex
	room    *sync.Cond // on mu: full got shorter
	host    string
	tags    map[string]string
	size    int
	buf     []collector.Point
	full    [][]collector.Point // full batches not yet taken by the writer
	running bool                // Run is writing the full batches
	filled  chan struct{}       // a batch got full

	invalid atomic.Int64
}

// NewBatcher returns a Batcher that calls flush with batches of at most
// batchSize points, oldest first.
func NewBatcher(host string, tags map[string]string, batchSize int, flush func([][]collector.Point) error) *Batcher {
	b := &Batcher{limits: ingest.DefaultLimits, flush: flush, host: host, tags: tags, size: batchSize, filled: make(chan struct{}, 1)}
	b.room = sync.NewCond(&b.mu)
	return b
}

// Configure changes the tags and batch size of the points added from now on.
func (b *Batcher) Configure(host string, tags map[string]string, batchSize int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.host, b.tags, b.size = host, tags, batchSize
}

// Add queues one point. It returns the reason a point is refused. When the
// batch is full it goes to the writer (Add waits while pendingBatches are
// already waiting), or, with no writer running, is flushed before Add returns.
func (b *Batcher) Add(p collector.Point) error {
	b.mu.Lock()
	p.Tags = b.withTags(p.Tags)
	if err := b.limits.Validate(toIngest(p)); err != nil {
		b.mu.Unlock()
		b.invalid.Add(1)
		return fmt.Errorf("point %s refused: %w", p.Metric, err)
	}
	b.buf = append(b.buf, p)
	if len(b.buf) < b.size {
		b.mu.Unlock()
		return nil
	}
	b.full = append(b.full, b.buf)
	b.buf = nil
	if !b.running {
		b.mu.Unlock()
		return b.Flush()
	}
	select {
	case b.filled <- struct{}{}:
	default:
	}
	for b.running && len(b.full) > pendingBatches {
		b.room.Wait()
	}
	b.mu.Unlock()
	return nil
}

// withTags returns the point's tags over the host and global tags: as in
// tcollector, a collector may set its own host tag (a remote target).
func (b *Batcher) withTags(own map[string]string) map[string]string {
	tags := make(map[string]string, len(b.tags)+len(own)+1)
	maps.Copy(tags, b.tags)
	tags["host"] = b.host
	maps.Copy(tags, own)
	return tags
}

// Flush hands every queued point, full batches and the partial one, to the
// flush function.
func (b *Batcher) Flush() error { return b.write(true) }

// write takes the full batches (and the partial one when partial is set) and
// flushes them.
func (b *Batcher) write(partial bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batches := b.full
	if partial && len(b.buf) > 0 {
		batches = append(batches, b.buf)
		b.buf = nil
	}
	b.full = nil
	b.room.Broadcast()
	b.mu.Unlock()
	if len(batches) == 0 {
		return nil
	}
	return b.flush(batches)
}

// Run writes full batches as they fill and everything every interval, until
// ctx ends; then it flushes once more so nothing queued is lost at shutdown.
func (b *Batcher) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		b.room.Broadcast()
		b.mu.Unlock()
		if err := b.Flush(); err != nil {
			onError(err)
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-b.filled:
			err = b.write(false)
		case <-t.C:
			err = b.Flush()
		}
		if err != nil {
			onError(err)
		}
	}
}

// Invalid is the number of points refused by Add.
func (b *Batcher) Invalid() int64 { return b.invalid.Load() }

func toIngest(p collector.Point) ingest.Point {
	return ingest.Point{Metric: p.Metric, Tags: p.Tags, Time: p.Time, Value: p.Value}
}

// putPoint is one data point of the /api/put JSON body, as the server and
// the tests decode it.
type putPoint struct {
	Metric    string            `json:"metric"`
	Timestamp int64             `json:"timestamp"`
	Value     float64           `json:"value"`
	Tags      map[string]string `json:"tags"`
}

// opentsdbTimestamp is seconds for whole seconds and milliseconds otherwise,
// the two forms OpenTSDB reads.
func opentsdbTimestamp(t time.Time) int64 {
	if t.Nanosecond() == 0 {
		return t.Unix()
	}
	return t.UnixMilli()
}

// gzipWriters are reused across batches: a compressor's state is most of a
// megabyte, which would otherwise be allocated for every batch.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // only fails for a bad level
	return zw
}}

// EncodeBatch is the gzip-compressed /api/put body of a batch: a JSON array of
// {"metric","timestamp","value","tags"} objects. It is written by hand because
// encoding/json's reflection over the tag maps was most of the agent's CPU
// time per point.
func EncodeBatch(batch []collector.Point) ([]byte, error) {
	js := make([]byte, 0, 128*len(batch))
	js = append(js, '[')
	for i, p := range batch {
		if i > 0 {
			js = append(js, ',')
		}
		var err error
		if js, err = appendPutJSON(js, p); err != nil {
			return nil, fmt.Errorf("encode batch: point %s: %w", p.Metric, err)
		}
	}
	js = append(js, ']')
	var buf bytes.Buffer
	buf.Grow(len(js) / 4)
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(js); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
}

func appendPutJSON(b []byte, p collector.Point) ([]byte, error) {
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return b, fmt.Errorf("value %v is not a JSON number", p.Value)
	}
	b = append(b, `{"metric":`...)
	b = appendJSONString(b, p.Metric)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, opentsdbTimestamp(p.Time), 10)
	b = append(b, `,"value":`...)
	b = appendJSONFloat(b, p.Value)
	b = append(b, `,"tags":{`...)
	first := true
	for k, v := range p.Tags { // a JSON object's order does not matter
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	return append(b, "}}"...), nil
}

// appendJSONFloat formats as encoding/json does: the shortest decimal that
// reads back as the same float64, exponent form only for very large or very
// small magnitudes.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s for JSON. Points were validated before they get
// here, so their names hold no quotes or control characters; escaping them
// anyway keeps a body valid JSON whatever a caller passes.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// FormatPut is a point as an OpenTSDB telnet put line, tags sorted.
func FormatPut(p collector.Point) string {
	var sb strings.Builder
	sb.WriteString("put ")
	sb.WriteString(p.Metric)
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatInt(opentsdbTimestamp(p.Time), 10))
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatFloat(p.Value, 'f', -1, 64))
	for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
		sb.WriteByte(' ')
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(p.Tags[k])
	}
	return sb.String()
}
