package opentsdb

import (
	"hash/maphash"
	"sync/atomic"
)

// tagCache hands out the tags map of a tag set already decoded, keyed by the
// tags object's text as sent: agents send the same series every interval, and
// making a map per point was the largest cost left in the /api/put decoder.
// The maps are shared between points and requests, so nothing may change a
// decoded point's Tags (nothing in ingest or store does). It is a fixed table
// of slots, each holding the latest tag set that hashed to it, read and
// replaced without locks: bounded memory, no eviction to run.
type tagCache struct {
	seed  maphash.Seed
	slots [tagCacheSlots]atomic.Pointer[cachedTags]
}

// tagCacheSlots bounds the cache: 16,384 tag sets (~5 MB with their maps).
const tagCacheSlots = 1 << 14

type cachedTags struct {
	text string
	tags map[string]string
}

func newTagCache() *tagCache { return &tagCache{seed: maphash.MakeSeed()} }

// slot is where the tag set written as text lives; tags is its map when the
// slot holds it.
func (c *tagCache) slot(text []byte) (slot *atomic.Pointer[cachedTags], tags map[string]string) {
	return c.lookup(&c.slots[maphash.Bytes(c.seed, text)&(tagCacheSlots-1)], string(text))
}

// slotString is slot for a tag set held in a string.
func (c *tagCache) slotString(text string) (slot *atomic.Pointer[cachedTags], tags map[string]string) {
	return c.lookup(&c.slots[maphash.String(c.seed, text)&(tagCacheSlots-1)], text)
}

func (c *tagCache) lookup(slot *atomic.Pointer[cachedTags], text string) (*atomic.Pointer[cachedTags], map[string]string) {
	if e := slot.Load(); e != nil && e.text == text {
		return slot, e.tags
	}
	return slot, nil
}
