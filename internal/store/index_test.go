package store

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testID(n int) (id [16]byte) {
	binary.LittleEndian.PutUint64(id[:], uint64(n)*0x9e3779b97f4a7c15+1)
	binary.LittleEndian.PutUint64(id[8:], uint64(n))
	return id
}

// TestIndexEvictAcrossChunks indexes more traces than an entry chunk and
// a segment's ID chunk hold, over two segments, evicts the first, and
// checks what is forgotten, what is kept, and that a forgotten trace's
// place is taken again without disturbing the others.
func TestIndexEvictAcrossChunks(t *testing.T) {
	const n = 3*entChunk + 17
	x := newIndex()
	var ids [][16]byte
	for i := range n {
		ids = append(ids, testID(i))
	}
	// Every trace has spans in segment 1; the odd ones in segment 2 too,
	// and every third one has a decision in segment 2.
	x.apply(&Record{Kind: KindSpans, IDs: ids}, ref{seg: 1, off: 0})
	for i := 1; i < n; i += 2 {
		x.apply(&Record{Kind: KindSpans, IDs: ids[i : i+1]}, ref{seg: 2, off: uint32(i)})
	}
	for i := 0; i < n; i += 3 {
		x.apply(&Record{Kind: KindDecision, IDs: ids[i : i+1], Decision: Decision{Keep: true, Policy: "p"}}, ref{seg: 2, off: 7})
	}
	require.Equal(t, n, x.len())

	x.evict(1)
	kept := 0
	for i, id := range ids {
		e, ok := x.get(id)
		inSeg2 := i%2 == 1 || i%3 == 0
		require.Equal(t, inSeg2, ok, "trace %d", i)
		if !ok {
			continue
		}
		kept++
		refs := x.appendRefs(nil, id, e)
		if i%2 == 1 {
			assert.Equal(t, []ref{{seg: 2, off: uint32(i)}}, refs, "trace %d", i)
		} else {
			assert.Empty(t, refs, "trace %d: decided, no spans left", i)
		}
		assert.Equal(t, i%3 == 0, e.flags&flagDecided != 0, "trace %d", i)
	}
	assert.Equal(t, kept, x.len())

	// New traces reuse the forgotten entries; the kept ones are untouched.
	var fresh [][16]byte
	for i := range n - kept {
		fresh = append(fresh, testID(n+i))
	}
	x.apply(&Record{Kind: KindSpans, IDs: fresh}, ref{seg: 3})
	assert.Equal(t, uint32(n), x.nents, "no entry added while free ones were left")
	for _, id := range fresh {
		e, ok := x.get(id)
		require.True(t, ok)
		assert.Equal(t, []ref{{seg: 3}}, x.appendRefs(nil, id, e))
		assert.Equal(t, flagSpans, e.flags, "a reused entry has no flag but its new spans record's")
	}
	e, ok := x.get(ids[3])
	require.True(t, ok)
	assert.Equal(t, []ref{{seg: 2, off: 3}}, x.appendRefs(nil, ids[3], e))
	assert.Equal(t, "p", x.decision(e).Policy)
}
