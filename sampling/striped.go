package sampling

import (
	"sync"
	"sync/atomic"
)

// striped is the key table of the keyed policies (dynamic, adaptive): n
// stripes, n a power of two, each holding under its own lock the keys whose
// hash h has h&(n-1) as its index, as Prometheus tsdb's stripeSeries does;
// and the number of keys held over all stripes, against a cap. S is what a
// stripe holds (a map, or an index and a slab).
type striped[S any] struct {
	stripes []stripe[S]
	maxKeys int64
	count   atomic.Int64 // keys held, over all stripes
}

type stripe[S any] struct {
	mu   sync.RWMutex
	data S
	// At least a cache line between one stripe's lock and the next's, so
	// that shards working on different stripes do not share one.
	_ [64]byte
}

// newStriped returns a table of n stripes (a power of two) capped at
// maxKeys keys, init preparing each stripe's data.
func newStriped[S any](n, maxKeys int, init func(*S)) *striped[S] {
	if n <= 0 || n&(n-1) != 0 {
		panic("striped: the number of stripes must be a power of two")
	}
	t := &striped[S]{stripes: make([]stripe[S], n), maxKeys: int64(maxKeys)}
	for i := range t.stripes {
		init(&t.stripes[i].data)
	}
	return t
}

// stripe returns the stripe of hash h.
func (t *striped[S]) stripe(h uint64) *stripe[S] {
	return &t.stripes[h&uint64(len(t.stripes)-1)]
}

// admit counts one more key and reports true if the table holds fewer than
// maxKeys, or whatever it holds with force; else it counts nothing.
func (t *striped[S]) admit(force bool) bool {
	if t.count.Add(1) <= t.maxKeys || force {
		return true
	}
	t.count.Add(-1)
	return false
}

// forget counts one key less.
func (t *striped[S]) forget() { t.count.Add(-1) }

// full reports whether the table holds maxKeys keys or more.
func (t *striped[S]) full() bool { return t.count.Load() >= t.maxKeys }
