// Package cowmap is a map for keys added a few times in a process's life
// and looked up at every event from several cores: a lookup only reads, and
// adding a key replaces the map (copy on write) instead of changing it. A
// sync.RWMutex would make every lookup write its reader count, a cache line
// that then moves between the cores at every event.
package cowmap

import (
	"iter"
	"sync"
	"sync/atomic"
)

// Map is a copy-on-write map from K to V. Its zero value is empty and ready
// to use. It is safe for concurrent use.
type Map[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // serialises the writers
}

// Load returns k's value, and whether k is in the map.
func (c *Map[K, V]) Load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// LoadOrNew returns k's value, adding the value create returns the first
// time. create runs at most once per key, with the writers' lock held.
func (c *Map[K, V]) LoadOrNew(k K, create func() V) V {
	if v, ok := c.Load(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n int
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		n = len(*old)
	}
	m := make(map[K]V, n+1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	v := create()
	m[k] = v
	c.m.Store(&m)
	return v
}

// All yields the keys and values the map held when All was called.
func (c *Map[K, V]) All() iter.Seq2[K, V] {
	m := c.m.Load()
	return func(yield func(K, V) bool) {
		if m == nil {
			return
		}
		for k, v := range *m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// Len is how many keys the map holds.
func (c *Map[K, V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}
