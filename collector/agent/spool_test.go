package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// drain reads and acknowledges every batch, returning the values in order.
func drain(t *testing.T, s *Spool) []float64 {
	t.Helper()
	var out []float64
	for {
		rec, ok, err := s.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, decodeValues(t, rec.Payload)...)
		s.Ack(rec)
	}
}

func decodeValues(t *testing.T, payload []byte) []float64 {
	t.Helper()
	ps, err := decodeBatch(payload)
	if err != nil {
		t.Fatal(err)
	}
	return values(ps)
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i < to; i++ {
		out = append(out, float64(i))
	}
	return out
}

func TestSpool(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, dir string)
	}{
		{"batches come out in order and the spool empties", func(t *testing.T, dir string) {
			s := openSpool(t, dir, 1<<20)
			for i := range 5 {
				spoolBatch(t, s, points(i*10, 10))
			}
			if got := drain(t, s); !slices.Equal(got, seq(0, 50)) {
				t.Fatalf("values = %v", got)
			}
			if s.Bytes() != 0 {
				t.Fatalf("Bytes = %d after draining", s.Bytes())
			}
		}},
		{"a restart resumes after the last acknowledged batch", func(t *testing.T, dir string) {
			s := openSpool(t, dir, 1<<20)
			for i := range 4 {
				spoolBatch(t, s, points(i*10, 10))
			}
			rec, _, _ := s.Peek()
			s.Ack(rec)
			s.Close()
			s = openSpool(t, dir, 1<<20)
			if got := drain(t, s); !slices.Equal(got, seq(10, 40)) {
				t.Fatalf("after restart values = %v", got)
			}
		}},
		{"a torn record at the end is cut off, the rest kept", func(t *testing.T, dir string) {
			s := openSpool(t, dir, 1<<20)
			spoolBatch(t, s, points(0, 10))
			spoolBatch(t, s, points(10, 10))
			s.Close()
			last := lastSegment(t, dir)
			info, _ := os.Stat(last)
			if err := os.Truncate(last, info.Size()-5); err != nil {
				t.Fatal(err)
			}
			s = openSpool(t, dir, 1<<20)
			if got := drain(t, s); !slices.Equal(got, seq(0, 10)) {
				t.Fatalf("values = %v", got)
			}
		}},
		{"when full the oldest segments are dropped and counted", func(t *testing.T, dir string) {
			s := openSpool(t, dir, 16<<10) // four 4 KiB segments
			for i := range 200 {
				spoolBatch(t, s, points(i*10, 10))
			}
			got := drain(t, s)
			if int64(len(got))+s.Dropped() != 2000 {
				t.Fatalf("kept %d + dropped %d != 2000 written", len(got), s.Dropped())
			}
			if s.Dropped() == 0 || got[len(got)-1] != 1999 {
				t.Fatalf("dropped %d, last value %v: want the oldest dropped and the newest kept", s.Dropped(), got[len(got)-1])
			}
			if !slices.Equal(got, seq(int(got[0]), 2000)) {
				t.Fatalf("kept values are not the newest contiguous run: %v...", got[:5])
			}
		}},
		{"a group commit spans segments, keeps the order and survives a restart", func(t *testing.T, dir string) {
			s := openSpool(t, dir, 16<<10) // 4 KiB segments; the group is about 6.5 KiB
			var bodies [][]byte
			var counts []int
			for i := range 12 {
				body, err := EncodeBatch(points(i*100, 100))
				if err != nil {
					t.Fatal(err)
				}
				bodies, counts = append(bodies, body), append(counts, 100)
			}
			oversize := make([]byte, 20<<10)
			group := append(append(bodies[:6:6], oversize), bodies[6:]...)
			err := s.AppendAll(group, append(append(counts[:6:6], 7), counts[6:]...))
			if err == nil || !strings.Contains(err.Error(), "larger than spool.max_bytes") {
				t.Fatalf("AppendAll with an oversize batch: %v, want it reported", err)
			}
			if s.Dropped() != 7 {
				t.Fatalf("dropped %d, want the oversize batch's 7 points", s.Dropped())
			}
			if segs, _ := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix)); len(segs) < 2 {
				t.Fatalf("%d segment files: the group was meant to cross segments", len(segs))
			}
			s.Close()
			s = openSpool(t, dir, 16<<10)
			if got := drain(t, s); !slices.Equal(got, seq(0, 1200)) {
				t.Fatalf("after a restart %d values, want 0..1199 in order", len(got))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, t.TempDir()) })
	}
}

func openSpool(t *testing.T, dir string, max int64) *Spool {
	t.Helper()
	s, err := OpenSpool(dir, max, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	slices.Sort(segs)
	for i := len(segs) - 1; i >= 0; i-- {
		if info, _ := os.Stat(segs[i]); info.Size() > 0 {
			return segs[i]
		}
	}
	t.Fatal("no non-empty segment")
	return ""
}
