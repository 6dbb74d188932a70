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
	a := newArena()
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
	a := newArena()
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
