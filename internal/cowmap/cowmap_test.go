package cowmap_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tailsift/tailsift/internal/cowmap"
)

// Goroutines racing to add the same keys create each value once, and all
// get that value.
func TestLoadOrNewCreatesOnce(t *testing.T) {
	var m cowmap.Map[int, *int]
	var created atomic.Int64
	const keys, workers = 50, 8
	got := make([][keys]*int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range keys {
				got[w][(k+w)%keys] = m.LoadOrNew((k+w)%keys, func() *int {
					created.Add(1)
					v := (k + w) % keys
					return &v
				})
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(keys), created.Load())
	assert.Equal(t, keys, m.Len())
	for k := range keys {
		v, ok := m.Load(k)
		assert.True(t, ok)
		assert.Equal(t, k, *v)
		for w := range workers {
			assert.Same(t, v, got[w][k], "worker %d key %d", w, k)
		}
	}
	_, ok := m.Load(keys)
	assert.False(t, ok)
}

func TestAll(t *testing.T) {
	var m cowmap.Map[string, int]
	assert.Zero(t, m.Len())
	for range m.All() {
		t.Fatal("an empty map yields")
	}
	m.LoadOrNew("a", func() int { return 1 })
	m.LoadOrNew("b", func() int { return 2 })
	m.LoadOrNew("a", func() int { return 3 })
	got := map[string]int{}
	for k, v := range m.All() {
		got[k] = v
	}
	assert.Equal(t, map[string]int{"a": 1, "b": 2}, got)
	n := 0
	for range m.All() {
		n++
		break
	}
	assert.Equal(t, 1, n, "stops when asked")
}
