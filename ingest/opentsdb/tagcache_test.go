package opentsdb

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amas-eye/amas/ingest"
)

// TestTagCacheShared decodes bodies from many goroutines through one cache,
// with tag sets that repeat across bodies (hits) and collide in slots (the
// slots keep being replaced): every point must get the tags it was sent with,
// and sets repeated across bodies must share maps. Run with -race, it also checks the slots'
// publication.
func TestTagCacheShared(t *testing.T) {
	cache := newTagCache()
	const workers, sets = 8, 1000
	var shared atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			seen := map[string]uintptr{} // host -> the map that carried it last
			for round := range 4 {
				body := []byte("[")
				for i := range 256 {
					if i > 0 {
						body = append(body, ',')
					}
					set := (w*131 + round*97 + i*13) % sets
					body = fmt.Appendf(body, `{"metric":"m","timestamp":1356998400,"value":1,"tags":{"host":"h%d","dc":"d%d"}}`, set, set%3)
				}
				body = append(body, ']')
				pts, rejected, err := decodeJSONBody(body, ingest.DefaultLimits, cache)
				if err != nil || len(rejected) > 0 || len(pts) != 256 {
					errs <- fmt.Errorf("decode: %v, %d refused, %d points", err, len(rejected), len(pts))
					return
				}
				for i, p := range pts {
					set := (w*131 + round*97 + i*13) % sets
					if m, ok := seen[p.Tags["host"]]; ok && m == reflect.ValueOf(p.Tags).Pointer() {
						shared.Add(1)
					}
					seen[p.Tags["host"]] = reflect.ValueOf(p.Tags).Pointer()
					if p.Tags["host"] != fmt.Sprintf("h%d", set) || p.Tags["dc"] != fmt.Sprintf("d%d", set%3) || len(p.Tags) != 2 {
						errs <- fmt.Errorf("point %d of worker %d: tags %v, want host=h%d dc=d%d", i, w, p.Tags, set, set%3)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if shared.Load() == 0 {
		t.Error("no tag set repeated across bodies shared its map")
	}
}
