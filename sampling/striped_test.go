package sampling

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStriped(t *testing.T) {
	tab := newStriped(8, 3, func(m *map[uint64]int) { *m = map[uint64]int{} })
	t.Run("a hash's stripe is hash&(n-1)", func(t *testing.T) {
		for _, h := range []uint64{0, 1, 7, 8, 9, 1<<63 | 5} {
			assert.Same(t, &tab.stripes[h&7], tab.stripe(h), "hash %#x", h)
		}
	})
	t.Run("the cap counts over all stripes", func(t *testing.T) {
		for range 3 {
			assert.True(t, tab.admit(false))
		}
		assert.True(t, tab.full())
		assert.False(t, tab.admit(false), "at the cap")
		assert.Equal(t, int64(3), tab.count.Load(), "a refused key is not counted")
		assert.True(t, tab.admit(true), "forced past the cap")
		assert.Equal(t, int64(4), tab.count.Load())
		tab.forget()
		tab.forget()
		assert.False(t, tab.full())
		assert.True(t, tab.admit(false))
	})
	t.Run("the number of stripes is a power of two", func(t *testing.T) {
		assert.Panics(t, func() { newStriped(6, 1, func(*int) {}) })
	})
}
