package opentsdb

import (
	"slices"
	"sync/atomic"
)

// scanPuts decodes the /api/put bodies agents send, an object or an array of
// objects with the keys metric, timestamp, value and tags, in one pass without
// reflection: the general decoder spent most of the HTTP path's CPU on them.
// It accepts only a strict subset of JSON: ASCII strings without escapes, JSON
// numbers, exact key names, no null. Any other body gets ok false, and
// decodeJSONBody hands it to the general decoder, so both give the same points
// (FuzzDecodeJSON checks it).
//
// Tag sets found in cache (which may be nil) share its maps.
func scanPuts(body []byte, cache *tagCache) (batch []jsonPoint, ok bool) {
	s := putScanner{b: body, cache: cache}
	batch = []jsonPoint{} // `[]` decodes to an empty slice, not nil, as in the general decoder
	s.space()
	if s.peek() == '{' {
		var jp jsonPoint
		if !s.object(&jp) {
			return nil, false
		}
		batch = append(batch, jp)
	} else {
		if !s.eat('[') {
			return nil, false
		}
		s.space()
		if !s.eat(']') {
			for {
				var jp jsonPoint
				s.space()
				if !s.object(&jp) {
					return nil, false
				}
				batch = append(batch, jp)
				s.space()
				if s.eat(']') {
					break
				}
				if !s.eat(',') {
					return nil, false
				}
			}
		}
	}
	s.space()
	return batch, s.i == len(s.b)
}

// putKeys are the keys of a data point, exactly as OpenTSDB documents them.
var putKeys = [4]string{"metric", "timestamp", "value", "tags"}

type putScanner struct {
	b     []byte
	i     int
	cache *tagCache
	// recent holds strings already made, by a cheap hash of their bytes: metric
	// names, tag keys, timestamps and many tag values repeat across a body, and a
	// hit saves an allocation for the price of a comparison.
	recent [64]string
}

func (s *putScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *putScanner) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *putScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads one data point. A key given twice is left to the general decoder,
// which merges two tags objects.
func (s *putScanner) object(jp *jsonPoint) bool {
	if !s.eat('{') {
		return false
	}
	s.space()
	if s.eat('}') {
		return true
	}
	var seen [4]bool
	for {
		s.space()
		key, ok := s.rawString()
		if !ok {
			return false
		}
		s.space()
		if !s.eat(':') {
			return false
		}
		s.space()
		field := slices.Index(putKeys[:], string(key))
		if field < 0 || seen[field] {
			return false
		}
		seen[field] = true
		switch field {
		case 0:
			v, ok := s.rawString()
			if !ok {
				return false
			}
			jp.Metric = s.intern(v)
		case 1:
			if jp.Timestamp, ok = s.scalar(); !ok {
				return false
			}
		case 2:
			if jp.Value, ok = s.scalar(); !ok {
				return false
			}
		case 3:
			if jp.Tags, ok = s.tags(); !ok {
				return false
			}
		}
		s.space()
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// tags reads the tags object; pairs are gathered first so the map is made at
// its size, unless the cache has the map of the same text.
func (s *putScanner) tags() (map[string]string, bool) {
	start := s.i
	if !s.eat('{') {
		return nil, false
	}
	var pairs [2 * 16][]byte
	kv := pairs[:0]
	s.space()
	if !s.eat('}') {
		for {
			s.space()
			k, ok := s.rawString()
			if !ok {
				return nil, false
			}
			s.space()
			if !s.eat(':') {
				return nil, false
			}
			s.space()
			v, ok := s.rawString()
			if !ok {
				return nil, false
			}
			kv = append(kv, k, v)
			s.space()
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return nil, false
			}
		}
	}
	var slot *atomic.Pointer[cachedTags]
	text := s.b[start:s.i]
	if s.cache != nil {
		var cached map[string]string
		if slot, cached = s.cache.slot(text); cached != nil {
			return cached, true
		}
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[s.intern(kv[i])] = s.intern(kv[i+1])
	}
	if slot != nil {
		slot.Store(&cachedTags{text: string(text), tags: m})
	}
	return m, true
}

// scalar is a timestamp or value: a string or a number, kept as its JSON text.
func (s *putScanner) scalar() (jsonScalar, bool) {
	start := s.i
	if s.peek() == '"' {
		if _, ok := s.rawString(); !ok {
			return jsonScalar{}, false
		}
	} else if !s.number() {
		return jsonScalar{}, false
	}
	return jsonScalar{raw: s.intern(s.b[start:s.i])}, true
}

// rawString reads a string of printable ASCII without escapes and returns its
// content.
func (s *putScanner) rawString() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *putScanner) number() bool {
	s.eat('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more decimal digits.
func (s *putScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *putScanner) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	slot := &s.recent[(uint(len(b))*31+uint(b[0])*7+uint(b[len(b)-1]))%uint(len(s.recent))]
	if *slot == string(b) {
		return *slot
	}
	*slot = string(b)
	return *slot
}
