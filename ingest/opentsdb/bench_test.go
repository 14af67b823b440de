package opentsdb

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/amas-eye/amas/ingest"
)

// benchBody is an /api/put body of n points shaped as agents send them.
func benchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":"sys.cpu.user","timestamp":%d,"value":%d.5,"tags":{"host":"web%04d","dc":"eu1"}}`, 1356998400+i/100, i%100, i%100)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func BenchmarkDecodeJSON(b *testing.B) {
	body := benchBody(1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		pts, errs, err := DecodeJSON(bytes.NewReader(body), ingest.DefaultLimits)
		if err != nil || len(errs) > 0 || len(pts) != 1000 {
			b.Fatal(err, errs)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkParsePutLine(b *testing.B) {
	line := "put sys.cpu.user 1356998400 42.5 host=web0001 dc=eu1"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePutLine(line, ingest.DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}
