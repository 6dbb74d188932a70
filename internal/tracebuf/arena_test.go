package tracebuf

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArenaClasses(t *testing.T) {
	prev := 0
	for c := range numClasses {
		size := classSize(c)
		require.Greater(t, size, prev, "class %d", c)
		require.Zero(t, size%16, "class %d", c)
		if c > 0 {
			assert.LessOrEqual(t, float64(size), 1.26*float64(prev), "class %d grows by at most a quarter", c)
		}
		assert.Equal(t, c, classOf(size), "classOf(classSize(%d))", c)
		if size > prev+1 {
			assert.Equal(t, c, classOf(prev+1), "classOf just above class %d", c-1)
		}
		prev = size
	}
	assert.Equal(t, maxClassSize, classSize(numClasses-1))
	assert.Equal(t, 0, classOf(1))
}

// Blocks handed out never overlap, keep what was written to them until
// released, and are reused once released.
func TestArenaAllocRelease(t *testing.T) {
	a := newArena(0)
	defer a.close()
	rng := rand.New(rand.NewPCG(1, 2))
	type block struct {
		b    []byte
		fill byte
	}
	var live []block
	check := func(bl block) {
		for i, v := range bl.b {
			if v != bl.fill {
				t.Fatalf("block of %d bytes: byte %d is %d, want %d (overwritten)", len(bl.b), i, v, bl.fill)
			}
		}
	}
	for i := range 20000 {
		if len(live) > 0 && rng.IntN(3) == 0 {
			k := rng.IntN(len(live))
			check(live[k])
			a.release(live[k].b)
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		n := 1 + rng.IntN(4096)
		if i%500 == 0 {
			n = maxClassSize + 1 + rng.IntN(3<<20) // a large, separately mapped block
		}
		b := a.alloc(n)
		require.Zero(t, len(b))
		require.GreaterOrEqual(t, cap(b), n)
		b = b[:n]
		fill := byte(i)
		for j := range b {
			b[j] = fill
		}
		live = append(live, block{b, fill})
	}
	for _, bl := range live {
		check(bl)
		a.release(bl.b)
	}
	assert.Empty(t, a.large, "large blocks unmapped")
	mapped := a.mapped
	// Everything was released: the same work again maps no new chunk.
	for range 1000 {
		a.release(a.alloc(1 + rng.IntN(4096)))
	}
	assert.Equal(t, mapped, a.mapped)
}

func TestArenaIgnoresForeignSlices(t *testing.T) {
	a := newArena(0)
	defer a.close()
	a.release(nil)
	a.release(make([]byte, 0, 100))             // not a class size: left to the GC
	a.release(make([]byte, 0, maxClassSize+10)) // not a mapped block
	assert.Empty(t, a.large)
	for c := range a.free {
		assert.Empty(t, a.free[c])
	}
	b := make([]byte, 0, 64) // a class size: reused, which is safe for a heap slice
	a.release(b)
	assert.Len(t, a.free[0], 1)
}

// Freed blocks go back to the OS: once most of what was allocated is
// released, the arena is due, and compaction unmaps the chunks that held it,
// keeping what is still in use, byte for byte, and the accounting.
func TestArenaCompactReturnsMemory(t *testing.T) {
	a := newArena(8 << 20)
	defer a.close()
	before := MappedBytes()
	rng := rand.New(rand.NewPCG(3, 4))
	var blocks [][]byte
	for i := range 40000 { // about 80 MiB in 20 chunks and more
		n := 64 + rng.IntN(4000)
		b := a.alloc(n)[:n]
		for j := range b {
			b[j] = byte(i)
		}
		blocks = append(blocks, b)
	}
	peak := a.mapped
	require.Greater(t, peak, int64(64<<20))
	assert.Equal(t, peak, MappedBytes()-before, "the process-wide accessor counts the arena")
	assert.False(t, a.due(0), "nothing freed")

	// Keep every 50th block: 2 % in use, scattered over every chunk.
	var kept [][]byte
	var keptIdx []int
	for i, b := range blocks {
		if i%50 == 0 {
			kept = append(kept, b)
			keptIdx = append(keptIdx, i)
			continue
		}
		a.release(b)
	}
	inUse := a.inUse()
	require.True(t, a.due(0), "spare %d, in use %d", a.spare, inUse)
	assert.Equal(t, peak, a.mapped, "freeing alone maps nothing less")

	moved := 0
	a.compact(0, func(move func(*[]byte)) {
		for i := range kept {
			move(&kept[i])
			moved++
		}
	})
	assert.Equal(t, len(kept), moved)
	assert.Less(t, a.mapped, peak/8+a.reserve, "chunks unmapped: %d of %d bytes left", a.mapped, peak)
	assert.Less(t, a.mapped-a.idleBytes, peak/8, "chunks in use: %d of %d bytes", a.mapped-a.idleBytes, peak)
	assert.LessOrEqual(t, a.idleBytes, a.reserve, "idle chunks kept within the reserve")
	assert.Equal(t, a.mapped, MappedBytes()-before)
	// The blocks in use keep their size; the ends of old chunks too small
	// for a block (< 64 bytes each) counted as in use and are gone.
	assert.InDelta(t, inUse, a.inUse(), float64(64*peak/chunkSize))
	assert.Zero(t, a.spare)
	assert.False(t, a.due(0))
	for k, b := range kept {
		i := keptIdx[k]
		require.Equal(t, cap(blocks[i]), cap(b), "block %d keeps its class", i)
		require.Len(t, b, len(blocks[i]))
		for j := range b {
			if b[j] != byte(i) {
				t.Fatalf("block %d: byte %d is %d after compaction, want %d", i, j, b[j], byte(i))
			}
		}
		a.release(b)
	}
	// All released: a drained arena gives everything back.
	require.True(t, a.due(0) || a.spare <= compactFloor)
	a.compact(0, func(func(*[]byte)) {})
	assert.Zero(t, a.mapped)
	assert.Equal(t, before, MappedBytes())
}

func TestArenaDue(t *testing.T) {
	tests := []struct {
		name         string
		reserve      int64
		inUse, spare int
		room         int64 // what the budget leaves over the records
		want         bool
	}{
		{"nothing spare", 4 << 20, 8 << 20, 0, 0, false},
		{"spare within the reserve and below the bytes in use", 4 << 20, 8 << 20, 3 << 20, 0, false},
		{"spare above the reserve", 4 << 20, 16 << 20, 6 << 20, 0, true},
		{"spare above the bytes in use: the buffer drained", 64 << 20, 2 << 20, 3 << 20, 0, true},
		{"spare too small to bother", 0, 0, compactFloor / 2, 0, false},
		// The budget has room: the arena holds as many spare bytes as
		// records before it copies them.
		{"above the reserve, below the records, room for it", 4 << 20, 16 << 20, 12 << 20, 64 << 20, false},
		{"above the records, room for it", 4 << 20, 16 << 20, 18 << 20, 64 << 20, true},
		{"above the room, below the records", 4 << 20, 16 << 20, 10 << 20, 8 << 20, true},
		{"the room below the reserve: the reserve", 4 << 20, 16 << 20, 3 << 20, 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArena(tt.reserve)
			defer a.close()
			var spare [][]byte
			for n := 0; n < tt.inUse; n += 4096 {
				a.alloc(4096)
			}
			for n := 0; n < tt.spare; n += 4096 {
				spare = append(spare, a.alloc(4096))
			}
			for _, b := range spare {
				a.release(b)
			}
			assert.Equal(t, tt.want, a.due(tt.room), "spare %d, in use %d, room %d", a.spare, a.inUse(), tt.room)
		})
	}
}
