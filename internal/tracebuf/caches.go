package tracebuf

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
)

// keptEntryCost is what one kept decision costs in the ristretto cache,
// counting ristretto's own item and map overhead.
const keptEntryCost = 96

// keptValue is what the kept cache stores under a trace ID's hash: a check
// on the rest of the ID, and the threshold the trace was kept with.
type keptValue struct {
	check     uint64
	threshold uint64
}

func idCheck(id *[16]byte) uint64 { return binary.LittleEndian.Uint64(id[8:]) }

func newKeptCache(maxBytes int64) (*ristretto.Cache[uint64, keptValue], error) {
	entries := max(maxBytes/keptEntryCost, 1)
	return ristretto.NewCache(&ristretto.Config[uint64, keptValue]{
		NumCounters:        entries * 10,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
}

// keptRing is a shard's authoritative record of its most recent kept
// decisions. ristretto may refuse or delay a Set (admission policy,
// contention); the ring never does, so late spans of a recently kept trace
// always find its decision. When an entry leaves the ring it is set into
// ristretto again if ristretto does not hold it.
type keptRing struct {
	ids   [][16]byte
	ths   []uint64
	next  int
	full  bool
	index map[[16]byte]uint64
}

func newKeptRing(n int) *keptRing {
	n = max(n, 16)
	return &keptRing{ids: make([][16]byte, n), ths: make([]uint64, n), index: make(map[[16]byte]uint64, n)}
}

// add records id as kept with threshold th and returns the entry it evicted.
func (r *keptRing) add(id [16]byte, th uint64) (old [16]byte, oldTh uint64, evicted bool) {
	if r.full {
		old, oldTh, evicted = r.ids[r.next], r.ths[r.next], true
		delete(r.index, old)
	}
	r.ids[r.next], r.ths[r.next] = id, th
	r.index[id] = th
	r.next++
	if r.next == len(r.ids) {
		r.next, r.full = 0, true
	}
	return old, oldTh, evicted
}

func (r *keptRing) get(id [16]byte) (uint64, bool) {
	th, ok := r.index[id]
	return th, ok
}

// dropFilter remembers dropped trace IDs by their 64-bit xxhash in two
// generations of open-addressing tables without pointers; when the current
// generation is full, the older one is cleared and becomes current. It holds
// between capacity/2 and capacity recent IDs in about 10.7 bytes each. A false
// positive needs a 64-bit hash collision.
type dropFilter struct {
	gens   [2][]uint64
	counts [2]int
	cur    int
	perGen int
}

func newDropFilter(capacity int) *dropFilter {
	if capacity <= 0 {
		return &dropFilter{}
	}
	per := max(capacity/2, 8)
	size := per*4/3 + 1
	return &dropFilter{gens: [2][]uint64{make([]uint64, size), make([]uint64, size)}, perGen: per}
}

func (f *dropFilter) add(h uint64) {
	if f.perGen == 0 {
		return
	}
	if h == 0 {
		h = 1
	}
	if f.contains(h) {
		return
	}
	if f.counts[f.cur] >= f.perGen {
		f.cur ^= 1
		clear(f.gens[f.cur])
		f.counts[f.cur] = 0
	}
	t := f.gens[f.cur]
	i := slot(h, len(t))
	for t[i] != 0 {
		i++
		if i == len(t) {
			i = 0
		}
	}
	t[i] = h
	f.counts[f.cur]++
}

func (f *dropFilter) contains(h uint64) bool {
	if f.perGen == 0 {
		return false
	}
	if h == 0 {
		h = 1
	}
	for _, t := range f.gens {
		i := slot(h, len(t))
		for t[i] != 0 {
			if t[i] == h {
				return true
			}
			i++
			if i == len(t) {
				i = 0
			}
		}
	}
	return false
}

// slot maps h onto [0, n) by its high bits (shards are picked by the low ones).
func slot(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

// hashID is the trace ID hash used for sharding and the caches.
func hashID(id *[16]byte) uint64 { return xxhash.Sum64(id[:]) }

// decisions is what a shard remembers of its past decisions: its recent kept
// traces (ring), the kept cache shared by the shards, and its dropped filter.
type decisions struct {
	ring    *keptRing
	kept    *ristretto.Cache[uint64, keptValue]
	dropped *dropFilter
}

// rememberKept records trace id (hash h) as kept with threshold th.
func (d *decisions) rememberKept(id [16]byte, h, th uint64) {
	d.kept.Set(h, keptValue{check: idCheck(&id), threshold: th}, keptEntryCost)
	if old, oldTh, evicted := d.ring.add(id, th); evicted {
		oh := hashID(&old)
		if v, ok := d.kept.Get(oh); !ok || v.check != idCheck(&old) {
			d.kept.Set(oh, keptValue{check: idCheck(&old), threshold: oldTh}, keptEntryCost)
		}
	}
}

// keptThreshold returns the threshold trace id (hash h) was kept with, if
// it was kept.
func (d *decisions) keptThreshold(id *[16]byte, h uint64) (uint64, bool) {
	if th, ok := d.ring.get(*id); ok {
		return th, true
	}
	if v, ok := d.kept.Get(h); ok && v.check == idCheck(id) {
		return v.threshold, true
	}
	return 0, false
}
