package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The spool is the agent's queue of batches on disk. Every batch is appended
// (and fsynced) before it is shipped and acknowledged only after the server
// committed it, so points survive an unreachable server and an agent restart,
// and batches leave in the order they were made.
//
// Layout of the spool directory:
//
//	00000000000000000001.seg   segment files, append-only, numbered in order
//	00000000000000000002.seg
//	cursor                     "<segment> <offset>\n": the first unacknowledged record
//
// A segment is a sequence of records:
//
//	uint32 LE  payload length
//	uint32 LE  number of points in the payload
//	uint32 LE  CRC-32C of the 4 count bytes and the payload
//	payload    the gzip-compressed JSON body of one /api/put request
//
// When the next record would take the spool past its size limit, whole segments
// are deleted oldest first and their unsent points counted as dropped.
const (
	recordHeaderSize = 12
	segmentSuffix    = ".seg"
	cursorFile       = "cursor"
	// Segments are a fraction of the limit so that dropping the oldest one
	// frees room without throwing away most of the spool.
	segmentsPerSpool = 8
	minSegmentBytes  = 4 << 10
)

// Record is one batch read from the spool.
type Record struct {
	Payload []byte
	Points  int
	pos     position
	next    int64
}

type position struct {
	seg uint64
	off int64
}

type segment struct {
	seq  uint64
	size int64
}

// Spool is safe for one appender and one reader at a time, which may be
// different goroutines.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	log      *slog.Logger

	mu    sync.Mutex
	segs  []segment // oldest first; the last one is open for appending
	w     *os.File
	head  position // first unacknowledged record
	total int64    // bytes in all segment files

	pending atomic.Int64 // unacknowledged bytes, for the heartbeat
	dropped atomic.Int64
	ready   chan struct{}
}

// OpenSpool opens (or creates) the spool in dir, truncating a record torn by a
// crash, and starts a fresh segment for appending.
func OpenSpool(dir string, maxBytes int64, log *slog.Logger) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool dir %s: %w", dir, err)
	}
	s := &Spool{
		dir: dir, maxBytes: maxBytes, log: log,
		segBytes: max(maxBytes/segmentsPerSpool, minSegmentBytes),
		ready:    make(chan struct{}, 1),
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	next := uint64(1)
	if n := len(s.segs); n > 0 {
		next = s.segs[n-1].seq + 1
	}
	if err := s.startSegment(next); err != nil {
		return nil, err
	}
	s.updatePending()
	return s, nil
}

func (s *Spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool dir %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if !strings.HasSuffix(name, segmentSuffix) || err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("spool segment %s: %w", name, err)
		}
		s.segs = append(s.segs, segment{seq: seq, size: info.Size()})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	if n := len(s.segs); n > 0 {
		if err := s.truncateTorn(&s.segs[n-1]); err != nil {
			return err
		}
	}
	for _, sg := range s.segs {
		s.total += sg.size
	}
	return s.loadCursor()
}

// truncateTorn cuts the last segment after its last complete record: a crash
// in the middle of an append leaves a partial record that was never
// acknowledged to anyone.
func (s *Spool) truncateTorn(sg *segment) error {
	f, err := os.OpenFile(s.segPath(sg.seq), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool segment %d: %w", sg.seq, err)
	}
	defer f.Close()
	var off int64
	for off < sg.size {
		_, next, err := readRecord(f, off)
		if err != nil {
			break
		}
		off = next
	}
	if off == sg.size {
		return nil
	}
	s.log.Warn("spool: truncating an incomplete record left by a crash", "segment", sg.seq, "offset", off, "bytes", sg.size-off)
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("spool segment %d: truncate: %w", sg.seq, err)
	}
	sg.size = off
	return f.Sync()
}

func (s *Spool) loadCursor() error {
	data, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if errors.Is(err, os.ErrNotExist) {
		s.head = s.firstPosition()
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	if _, err := fmt.Sscanf(string(data), "%d %d", &s.head.seg, &s.head.off); err != nil {
		return fmt.Errorf("spool cursor %q: %w", data, err)
	}
	// The cursor's segment may have been deleted after it was consumed or dropped.
	if i := s.segIndex(s.head.seg); i < 0 {
		s.head = s.firstPositionAfter(s.head.seg)
	}
	return nil
}

func (s *Spool) firstPosition() position {
	if len(s.segs) == 0 {
		return position{}
	}
	return position{seg: s.segs[0].seq}
}

func (s *Spool) firstPositionAfter(seq uint64) position {
	for _, sg := range s.segs {
		if sg.seq > seq {
			return position{seg: sg.seq}
		}
	}
	return position{}
}

func (s *Spool) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segmentSuffix))
}

func (s *Spool) segIndex(seq uint64) int {
	for i, sg := range s.segs {
		if sg.seq == seq {
			return i
		}
	}
	return -1
}

func (s *Spool) startSegment(seq uint64) error {
	f, err := os.OpenFile(s.segPath(seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if s.w != nil {
		// Records of a group commit may still be unsynced in the full segment.
		if err := s.w.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("spool: fsync a full segment: %w", err)
		}
		if err := s.w.Close(); err != nil {
			s.log.Warn("spool: closing a full segment", "err", err)
		}
	}
	// The new file's directory entry must survive a crash too.
	if err := syncDir(s.dir); err != nil {
		s.log.Warn("spool: fsync the spool directory", "err", err)
	}
	s.w = f
	s.segs = append(s.segs, segment{seq: seq})
	if s.head.seg == 0 {
		s.head = position{seg: seq}
	}
	return nil
}

// Append writes one batch and fsyncs it; when it returns nil the batch survives
// a crash.
func (s *Spool) Append(payload []byte, points int) error {
	return s.AppendAll([][]byte{payload}, []int{points})
}

// AppendAll writes batches in order with one fsync for all of them (a group
// commit); when it returns nil they all survive a crash. A batch that cannot
// be written is reported in the error; the others are still written.
func (s *Spool) AppendAll(payloads [][]byte, points []int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	written := 0
	for i, payload := range payloads {
		if err := s.appendLocked(payload, points[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		written++
	}
	if written == 0 {
		return errors.Join(errs...)
	}
	if err := s.w.Sync(); err != nil {
		return errors.Join(append(errs, fmt.Errorf("spool: fsync: %w", err))...)
	}
	s.updatePending()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return errors.Join(errs...)
}

// appendLocked writes one record without syncing it. The reader sees it at
// once, but only after the caller has synced it and released the lock.
func (s *Spool) appendLocked(payload []byte, points int) error {
	size := int64(recordHeaderSize + len(payload))
	if size > s.maxBytes {
		s.dropped.Add(int64(points))
		return fmt.Errorf("spool: a batch of %d bytes is larger than spool.max_bytes (%d): %d points dropped", size, s.maxBytes, points)
	}
	w := &s.segs[len(s.segs)-1]
	if w.size > 0 && w.size+size > s.segBytes {
		if err := s.startSegment(w.seq + 1); err != nil {
			return err
		}
	}
	for s.total+size > s.maxBytes && len(s.segs) > 1 {
		if err := s.dropOldest(); err != nil {
			return err
		}
	}
	if _, err := s.w.Write(encodeRecord(payload, points)); err != nil {
		return fmt.Errorf("spool: append: %w", err)
	}
	s.segs[len(s.segs)-1].size += size
	s.total += size
	return nil
}

func encodeRecord(payload []byte, points int) []byte {
	rec := make([]byte, recordHeaderSize+len(payload))
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], uint32(points))
	copy(rec[recordHeaderSize:], payload)
	binary.LittleEndian.PutUint32(rec[8:], checksum(rec[4:8], payload))
	return rec
}

func checksum(count, payload []byte) uint32 {
	table := crc32.MakeTable(crc32.Castagnoli) // cached by the crc32 package
	return crc32.Update(crc32.Checksum(count, table), table, payload)
}

var errBadRecord = errors.New("spool: damaged record")

// readRecord reads the record at off and returns it with the offset of the next.
func readRecord(r io.ReaderAt, off int64) (Record, int64, error) {
	var hdr [recordHeaderSize]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return Record{}, 0, fmt.Errorf("%w at offset %d: header: %v", errBadRecord, off, err)
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	payload := make([]byte, n)
	if _, err := r.ReadAt(payload, off+recordHeaderSize); err != nil {
		return Record{}, 0, fmt.Errorf("%w at offset %d: payload: %v", errBadRecord, off, err)
	}
	if checksum(hdr[4:8], payload) != binary.LittleEndian.Uint32(hdr[8:]) {
		return Record{}, 0, fmt.Errorf("%w at offset %d: checksum mismatch", errBadRecord, off)
	}
	rec := Record{Payload: payload, Points: int(binary.LittleEndian.Uint32(hdr[4:]))}
	return rec, off + recordHeaderSize + int64(n), nil
}

// dropOldest deletes the oldest segment to make room, counting the points in it
// that were never acknowledged.
func (s *Spool) dropOldest() error {
	old := s.segs[0]
	from := int64(0)
	if s.head.seg == old.seq {
		from = s.head.off
	} else if s.head.seg > old.seq {
		from = old.size // already acknowledged
	}
	lost := s.countPoints(old, from)
	if err := os.Remove(s.segPath(old.seq)); err != nil {
		return fmt.Errorf("spool: drop segment %d: %w", old.seq, err)
	}
	s.segs = s.segs[1:]
	s.total -= old.size
	if s.head.seg <= old.seq {
		s.head = position{seg: s.segs[0].seq}
		s.saveCursor()
	}
	s.dropped.Add(int64(lost))
	s.log.Error("spool full: dropped the oldest points", "points", lost, "segment", old.seq,
		"max_bytes", s.maxBytes, "dropped_total", s.dropped.Load())
	return nil
}

func (s *Spool) countPoints(sg segment, from int64) int {
	f, err := os.Open(s.segPath(sg.seq))
	if err != nil {
		s.log.Warn("spool: counting the points of a dropped segment", "segment", sg.seq, "err", err)
		return 0
	}
	defer f.Close()
	n := 0
	for off := from; off < sg.size; {
		rec, next, err := readRecord(f, off)
		if err != nil {
			break
		}
		n += rec.Points
		off = next
	}
	return n
}

// Peek returns the oldest unacknowledged batch; ok is false when the spool is
// empty. A damaged record is skipped with the rest of its segment, logged.
func (s *Spool) Peek() (rec Record, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if err := s.trimConsumed(); err != nil {
			return Record{}, false, err
		}
		i := s.segIndex(s.head.seg)
		if i < 0 || s.head.off >= s.segs[i].size {
			return Record{}, false, nil
		}
		rec, err := s.readAt(s.head)
		if err == nil {
			return rec, true, nil
		}
		if !errors.Is(err, errBadRecord) {
			return Record{}, false, err
		}
		s.log.Error("spool: skipping the rest of a damaged segment", "segment", s.head.seg, "err", err)
		s.head.off = s.segs[i].size
		s.saveCursor()
	}
}

func (s *Spool) readAt(p position) (Record, error) {
	f, err := os.Open(s.segPath(p.seg))
	if err != nil {
		return Record{}, fmt.Errorf("spool: open segment %d: %w", p.seg, err)
	}
	defer f.Close()
	rec, next, err := readRecord(f, p.off)
	if err != nil {
		return Record{}, err
	}
	rec.pos, rec.next = p, next
	return rec, nil
}

// trimConsumed deletes fully acknowledged segments other than the one open for
// appending, and moves the head to the next segment.
func (s *Spool) trimConsumed() error {
	for len(s.segs) > 1 && s.head.seg == s.segs[0].seq && s.head.off >= s.segs[0].size {
		old := s.segs[0]
		if err := os.Remove(s.segPath(old.seq)); err != nil {
			return fmt.Errorf("spool: remove sent segment %d: %w", old.seq, err)
		}
		s.segs = s.segs[1:]
		s.total -= old.size
		s.head = position{seg: s.segs[0].seq}
		s.saveCursor()
	}
	return nil
}

// Ack marks rec as delivered. A record whose segment was dropped meanwhile (the
// spool filled up while it was in flight) leaves the head where it is.
func (s *Spool) Ack(rec Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head != rec.pos {
		return
	}
	s.head.off = rec.next
	s.saveCursor()
	if err := s.trimConsumed(); err != nil {
		s.log.Warn("spool: trimming sent segments", "err", err)
	}
	s.updatePending()
}

// saveCursor persists the head. Losing it (a crash between a delivery and this
// write) only makes the next start resend one batch, so failures are logged
// rather than fatal.
func (s *Spool) saveCursor() {
	tmp := filepath.Join(s.dir, cursorFile+".tmp")
	err := writeFileSync(tmp, fmt.Appendf(nil, "%d %d\n", s.head.seg, s.head.off))
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, cursorFile))
	}
	if err != nil {
		s.log.Warn("spool: saving the cursor; the last batch may be sent twice after a restart", "err", err)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Spool) updatePending() {
	p := s.total
	if i := s.segIndex(s.head.seg); i >= 0 {
		for _, sg := range s.segs[:i] {
			p -= sg.size
		}
		p -= s.head.off
	}
	s.pending.Store(p)
}

// Bytes is the size of the batches not yet delivered.
func (s *Spool) Bytes() int64 { return s.pending.Load() }

// Dropped is the number of points discarded because the spool was full.
func (s *Spool) Dropped() int64 { return s.dropped.Load() }

// Ready is signalled after an append, so a reader waiting on an empty spool
// wakes up.
func (s *Spool) Ready() <-chan struct{} { return s.ready }

// Close syncs and closes the segment open for appending.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	s.w = nil
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}
