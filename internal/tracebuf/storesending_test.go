package tracebuf

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestStoredSends: a trace is left out while a send of its stored spans is
// under way (two at once: until both ended) and once one failed, until a
// later one went; the failed ones are bounded, the oldest forgotten.
func TestStoredSends(t *testing.T) {
	id := func(n int) [16]byte {
		var x [16]byte
		binary.BigEndian.PutUint64(x[8:], uint64(n))
		return x
	}
	var s storedSends
	all := func() [][16]byte { return [][16]byte{id(1), id(2), id(3)} }
	assert.Equal(t, all(), s.without(all()), "none under way")

	s.begin(id(1))
	s.begin(id(1))
	s.begin(id(2))
	assert.Equal(t, [][16]byte{id(3)}, s.without(all()))
	s.end(id(1), true)
	assert.Equal(t, [][16]byte{id(3)}, s.without(all()), "trace 1: one send still under way")
	s.end(id(1), true)
	s.end(id(2), false)
	assert.Equal(t, [][16]byte{id(1), id(3)}, s.without(all()), "trace 2 failed: left out")
	s.begin(id(2))
	s.end(id(2), true)
	assert.Equal(t, all(), s.without(all()), "trace 2 asked again and delivered")
	assert.Zero(t, s.n.Load())

	for n := range maxFailedSends + 10 {
		s.begin(id(100 + n))
		s.end(id(100+n), false)
	}
	assert.Len(t, s.ids, maxFailedSends, "failed sends bounded")
	assert.Equal(t, [][16]byte{id(100)}, s.without([][16]byte{id(100)}), "the oldest forgotten")
	last := id(100 + maxFailedSends + 9)
	assert.Empty(t, s.without([][16]byte{last}))
}
