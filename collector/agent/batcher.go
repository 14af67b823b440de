package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/ingest"
)

// Batcher adds the host and global tags to every point, refuses the points the
// server would refuse, and groups the rest into batches that it hands, in
// order, to its flush function (the spool, or stdout for --dry-run).
type Batcher struct {
	limits ingest.Limits
	flush  func([]collector.Point) error

	flushMu sync.Mutex // held across a flush so batches leave in order
	mu      sync.Mutex
	host    string
	tags    map[string]string
	size    int
	buf     []collector.Point

	invalid atomic.Int64
}

// NewBatcher returns a Batcher that calls flush with at most batchSize points.
func NewBatcher(host string, tags map[string]string, batchSize int, flush func([]collector.Point) error) *Batcher {
	return &Batcher{limits: ingest.DefaultLimits, flush: flush, host: host, tags: tags, size: batchSize}
}

// Configure changes the tags and batch size of the points added from now on.
func (b *Batcher) Configure(host string, tags map[string]string, batchSize int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.host, b.tags, b.size = host, tags, batchSize
}

// Add queues one point. It returns the reason a point is refused; a full batch
// is flushed before Add returns.
func (b *Batcher) Add(p collector.Point) error {
	b.mu.Lock()
	p.Tags = b.withTags(p.Tags)
	if err := b.limits.Validate(toIngest(p)); err != nil {
		b.mu.Unlock()
		b.invalid.Add(1)
		return fmt.Errorf("point %s refused: %w", p.Metric, err)
	}
	b.buf = append(b.buf, p)
	full := len(b.buf) >= b.size
	b.mu.Unlock()
	if full {
		return b.Flush()
	}
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

// Flush hands whatever is queued to the flush function.
func (b *Batcher) Flush() error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batch := b.buf
	b.buf = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	return b.flush(batch)
}

// Run flushes every interval until ctx ends, then flushes once more so nothing
// queued is lost at shutdown.
func (b *Batcher) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := b.Flush(); err != nil {
				onError(err)
			}
			return
		case <-t.C:
			if err := b.Flush(); err != nil {
				onError(err)
			}
		}
	}
}

// Invalid is the number of points refused by Add.
func (b *Batcher) Invalid() int64 { return b.invalid.Load() }

func toIngest(p collector.Point) ingest.Point {
	return ingest.Point{Metric: p.Metric, Tags: p.Tags, Time: p.Time, Value: p.Value}
}

// putPoint is one data point of the /api/put JSON body.
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

// EncodeBatch is the gzip-compressed /api/put body of a batch.
func EncodeBatch(batch []collector.Point) ([]byte, error) {
	body := make([]putPoint, len(batch))
	for i, p := range batch {
		body[i] = putPoint{Metric: p.Metric, Timestamp: opentsdbTimestamp(p.Time), Value: p.Value, Tags: p.Tags}
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(body); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
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
