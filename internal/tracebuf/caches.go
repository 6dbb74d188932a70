package tracebuf

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"

	"github.com/tailsift/tailsift/sampling"
)

// keptEntryCost is what one kept decision costs in the ristretto cache,
// counting ristretto's own item and map overhead.
const keptEntryCost = 104

// keptMark is how the spans of a kept trace are marked: the threshold it was
// kept with and, when a policy derived the randomness it was decided on
// (probabilistic with hash_salt), that randomness, so that its late spans
// carry the same rv and th as the rest of the trace.
type keptMark struct {
	th uint64
	rv uint64 // the randomness's 56 bits with rvSet; 0 when the trace's own
}

// rvSet marks keptMark.rv as holding a randomness (56 bits, never this one).
const rvSet = 1 << 63

func newKeptMark(th otelsampling.Threshold, rnd otelsampling.Randomness, hasRnd bool) keptMark {
	m := keptMark{th: th.Unsigned()}
	if hasRnd {
		m.rv = rnd.Unsigned() | rvSet
	}
	return m
}

// marker is the sampling.Marker that writes m into span tracestates.
func (m keptMark) marker() sampling.Marker {
	th, _ := otelsampling.UnsignedToThreshold(m.th)
	if m.rv&rvSet == 0 {
		return sampling.NewMarker(th)
	}
	rnd, _ := otelsampling.UnsignedToRandomness(m.rv &^ rvSet)
	return sampling.NewMarkerOn(th, rnd)
}

// keptValue is what the kept cache stores under a trace ID's hash: a check
// on the rest of the ID, and how the trace's spans were marked.
type keptValue struct {
	check uint64
	mark  keptMark
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
	marks []keptMark
	next  int
	full  bool
	index map[[16]byte]keptMark
}

func newKeptRing(n int) *keptRing {
	n = max(n, 16)
	return &keptRing{ids: make([][16]byte, n), marks: make([]keptMark, n), index: make(map[[16]byte]keptMark, n)}
}

// add records id as kept with mark m and returns the entry it evicted.
func (r *keptRing) add(id [16]byte, m keptMark) (old [16]byte, oldMark keptMark, evicted bool) {
	if r.full {
		old, oldMark, evicted = r.ids[r.next], r.marks[r.next], true
		delete(r.index, old)
	}
	r.ids[r.next], r.marks[r.next] = id, m
	r.index[id] = m
	r.next++
	if r.next == len(r.ids) {
		r.next, r.full = 0, true
	}
	return old, oldMark, evicted
}

func (r *keptRing) get(id [16]byte) (keptMark, bool) {
	m, ok := r.index[id]
	return m, ok
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

// rememberKept records trace id (hash h) as kept with mark m.
func (d *decisions) rememberKept(id [16]byte, h uint64, m keptMark) {
	d.kept.Set(h, keptValue{check: idCheck(&id), mark: m}, keptEntryCost)
	if old, oldMark, evicted := d.ring.add(id, m); evicted {
		oh := hashID(&old)
		if v, ok := d.kept.Get(oh); !ok || v.check != idCheck(&old) {
			d.kept.Set(oh, keptValue{check: idCheck(&old), mark: oldMark}, keptEntryCost)
		}
	}
}

// keptMark returns how trace id (hash h) was marked, if it was kept.
func (d *decisions) keptMark(id *[16]byte, h uint64) (keptMark, bool) {
	if m, ok := d.ring.get(*id); ok {
		return m, true
	}
	if v, ok := d.kept.Get(h); ok && v.check == idCheck(id) {
		return v.mark, true
	}
	return keptMark{}, false
}
