package store

import (
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
)

// An s2 store compresses each block but a segment's first with a
// dictionary: the first 64 KiB of the raw records of the segment's first
// block of at least minDictSource bytes. A block of one request then
// finds the strings every request repeats (resource and scope attributes,
// span names, attribute keys) in it: 93 B/span of compressed request
// instead of 98 on the benchmark workload, at about the CPU of s2 without
// it, and without waiting to batch requests (which would widen what a
// kill -9 loses).
const minDictSource = 16 << 10

// dictKey names a segment's dictionary: its segment, and the offset of
// the block it comes from.
type dictKey struct{ seg, off uint32 }

// dicts caches the segments' dictionaries for the writer and the readers.
type dicts struct {
	mu sync.Mutex
	m  map[dictKey]*s2.Dict
}

// put caches the dictionary of segment seg made from the block at off.
func (c *dicts) put(k dictKey, d *s2.Dict) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[dictKey]*s2.Dict)
	}
	c.m[k] = d
	c.mu.Unlock()
}

// evict forgets the dictionaries of segment seg.
func (c *dicts) evict(seg uint32) {
	c.mu.Lock()
	for k := range c.m {
		if k.seg == seg {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// of returns the dictFunc of segment seg: a cached dictionary, or one made
// from the raw records read(off) returns.
func (c *dicts) of(seg uint32, read func(off uint32) ([]byte, error)) dictFunc {
	return func(off, n uint32) (*s2.Dict, error) {
		k := dictKey{seg, off}
		c.mu.Lock()
		d := c.m[k]
		c.mu.Unlock()
		if d != nil {
			return d, nil
		}
		raw, err := read(off)
		if err != nil {
			return nil, err
		}
		if d = makeDict(raw, n); d == nil {
			return nil, fmt.Errorf("no dictionary of %d bytes in the block at %d", n, off)
		}
		c.put(k, d)
		return d, nil
	}
}

// makeDict makes the dictionary of the first n bytes of raw (a copy), or
// returns nil when raw is too short.
func makeDict(raw []byte, n uint32) *s2.Dict {
	if n < s2.MinDictSize || n > s2.MaxDictSize || int(n) > len(raw) {
		return nil
	}
	return s2.MakeDict(slices.Clone(raw[:n]), nil)
}

// newDict makes the dictionary of the current segment from raw, the
// records of the block just written at ref at, when the store writes s2,
// the segment has none yet and raw is long enough.
func (s *Store) newDict(raw []byte, at ref) {
	w := &s.w
	if !s.codec.s2 || (w.dict != nil && w.dict.seg == at.seg) || len(raw) < minDictSource {
		return
	}
	n := uint32(min(len(raw), s2.MaxDictSize))
	d := makeDict(raw, n)
	if d == nil {
		return
	}
	w.dict = &segDict{seg: at.seg, off: at.off, n: n, d: d}
	s.dicts.put(dictKey(at), d)
}
