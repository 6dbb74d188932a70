package tracebuf

import (
	"encoding/binary"
	"math/bits"
	"time"

	"github.com/cespare/xxhash/v2"
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"

	"github.com/tailsift/tailsift/sampling"
)

// keptMark is how the spans of a kept trace are marked: the threshold it was
// kept with and, when a policy derived the randomness it was decided on
// (probabilistic with hash_salt), that randomness, so that its late spans
// carry the same rv and th as the rest of the trace.
type keptMark struct {
	th uint64
	rv uint64 // the randomness's 56 bits with rvSet; 0 when the trace's own
}

// rvSet marks keptMark.rv as holding a randomness (the 56 bits of rvMask).
const (
	rvSet  = 1 << 63
	rvMask = 1<<56 - 1
)

// A supplement (sampling.Supplement: a rescue by a late span, or a
// retroactive keep through the store's API) is kept in keptMark.rv's bits
// from supplementShift: the trace's spans then go out with the supplement
// marker instead of th, so that they count 0 downstream (the traces the
// first decision kept already stand for it; docs/policies/counts.md).
const (
	supplementShift = 60
	supplementMask  = 3 << supplementShift
)

// supplementMark is the mark of a trace kept as a supplement.
func supplementMark(th otelsampling.Threshold, why sampling.Supplement) keptMark {
	return keptMark{th: th.Unsigned(), rv: uint64(why) << supplementShift}
}

func newKeptMark(th otelsampling.Threshold, rnd otelsampling.Randomness, hasRnd bool) keptMark {
	m := keptMark{th: th.Unsigned()}
	if hasRnd {
		m.rv = rnd.Unsigned() | rvSet
	}
	return m
}

// keptMark.th holds a 56-bit threshold; its top byte, from ruleShift, holds
// the index + 1 of the policy that kept the trace among the shard's rules
// (0: unknown), for the output annotations on its late spans.
const (
	ruleShift = 56
	thMask    = 1<<ruleShift - 1
)

// withRule returns m naming the rule of index i (ignored past 254).
func (m keptMark) withRule(i int) keptMark {
	if i >= 0 && i < 255 {
		m.th = m.th&thMask | uint64(i+1)<<ruleShift
	}
	return m
}

// rule returns the index of the rule m names, or -1.
func (m keptMark) rule() int { return int(m.th>>ruleShift) - 1 }

// threshold returns the threshold m was kept with.
func (m keptMark) threshold() otelsampling.Threshold {
	th, _ := otelsampling.UnsignedToThreshold(m.th & thMask)
	return th
}

// supplement returns the supplement m marks spans with, 0 for none.
func (m keptMark) supplement() sampling.Supplement {
	return sampling.Supplement((m.rv & supplementMask) >> supplementShift)
}

// randomness returns the randomness (56 bits) m writes as rv, if any.
func (m keptMark) randomness() (uint64, bool) {
	return m.rv & rvMask, m.rv&rvSet != 0
}

// marker is the sampling.Marker that writes m into span tracestates.
func (m keptMark) marker() sampling.Marker {
	if why := m.supplement(); why != 0 {
		return sampling.NewSupplementMarker(why)
	}
	th := m.threshold()
	rv, ok := m.randomness()
	if !ok {
		return sampling.NewMarker(th)
	}
	rnd, _ := otelsampling.UnsignedToRandomness(rv)
	return sampling.NewMarkerOn(th, rnd)
}

// keptValue is what the kept cache stores under a trace ID's hash: a check
// on the rest of the ID, and how the trace's spans were marked.
type keptValue struct {
	check uint64
	mark  keptMark
}

func idCheck(id *[16]byte) uint64 { return binary.LittleEndian.Uint64(id[8:]) }

// keptRing is a shard's record of its most recent kept decisions, the ones
// it hands over when another gateway takes its traces (ForeignDecisions:
// the shared keptCache cannot be listed by shard). It grows as it fills,
// so an under-filled ring holds little; it may hold an ID twice.
type keptRing struct {
	ids   [][16]byte
	marks []keptMark
	size  int
	next  int
}

func newKeptRing(n int) *keptRing { return &keptRing{size: max(n, 16)} }

// add records id as kept with mark m, in place of the oldest entry once
// the ring is full.
func (r *keptRing) add(id [16]byte, m keptMark) {
	if len(r.ids) < r.size {
		r.ids, r.marks = append(r.ids, id), append(r.marks, m)
		return
	}
	r.ids[r.next], r.marks[r.next] = id, m
	r.next = (r.next + 1) % r.size
}

// dropFilter remembers dropped trace IDs by their 64-bit xxhash in two
// generations of open-addressing tables without pointers. When the current
// generation is full, or older than maxAge, the older one is let go and a new
// one becomes current: it holds between capacity/2 and capacity recent IDs
// in about 10.7 bytes each at most, and IDs for maxAge to twice maxAge; a
// generation whose newest ID is older than maxAge is let go at once. A
// generation's table starts small and doubles as it fills, so a filter that
// holds few IDs touches little memory, and one that ages out while idle gives
// its tables back. A false positive needs a 64-bit hash collision.
type dropFilter struct {
	gens    [2][]uint64
	counts  [2]int
	newest  [2]int64 // when each generation took its last ID
	cur     int
	perGen  int   // IDs a generation holds before it is retired
	maxAge  int64 // a generation older than this is retired (ns); 0: never
	started int64 // when the current generation began
}

// dropAge is how long a shard's dropped filter keeps an ID at least: the
// longest a trace may keep receiving spans (completion.max_wait), or the
// rescue window when longer. Under load the filter's capacity bounds that
// horizon first (a million entries are a minute at 16 000 dropped traces
// a second); when idle, the age lets it give its memory back.
func dropAge(cfg shardConfig) time.Duration {
	return max(cfg.completion.MaxWait, time.Duration(cfg.window))
}

// minDropTable is the slots a generation's table starts with.
const minDropTable = 1024

func newDropFilter(capacity int, maxAge time.Duration) *dropFilter {
	if capacity <= 0 {
		return &dropFilter{}
	}
	return &dropFilter{perGen: max(capacity/2, 8), maxAge: int64(maxAge)}
}

// maxSlots is the size of a full generation's table (at most 3/4 full).
func (f *dropFilter) maxSlots() int { return f.perGen*4/3 + 1 }

// add remembers h, at time now.
func (f *dropFilter) add(h uint64, now int64) {
	if f.perGen == 0 {
		return
	}
	if h == 0 {
		h = 1
	}
	f.expire(now)
	// Only the current generation is probed: the probe is the cache line
	// insert then writes. An ID only the older generation holds is added
	// again, and so kept as long as a new one; probing the older table for
	// it would cost a cache miss per drop, in a table of megabytes, for IDs
	// that are almost never there (a trace is dropped once: the spans that
	// arrive after are refused by contains).
	if find(f.gens[f.cur], h) >= 0 {
		return
	}
	if f.counts[f.cur] >= f.perGen {
		f.rotate(now)
	}
	if f.counts[f.cur] == 0 { // a generation's age counts from its first ID
		f.started = now
	}
	c := f.counts[f.cur] + 1
	if t := f.gens[f.cur]; len(t) < f.maxSlots() && c*4 > len(t)*3 {
		f.grow()
	}
	insert(f.gens[f.cur], h)
	f.counts[f.cur], f.newest[f.cur] = c, now
}

// expire lets go of the generations whose newest ID is older than maxAge,
// retires the current generation when it is older than maxAge, and returns
// the bytes of the tables the filter let go.
func (f *dropFilter) expire(now int64) int {
	if f.maxAge == 0 {
		return 0
	}
	freed := 0
	for g := range f.gens {
		if f.gens[g] != nil && now-f.newest[g] >= f.maxAge {
			freed += 8 * len(f.gens[g])
			f.gens[g], f.counts[g] = nil, 0
		}
	}
	if f.counts[f.cur] > 0 && now-f.started >= f.maxAge {
		// The older generation, retired before this one began, has gone.
		f.rotate(now)
	}
	return freed
}

// aging reports whether the filter still holds IDs that expire will let go.
func (f *dropFilter) aging() bool { return f.maxAge > 0 && !f.empty() }

// rotate lets the older generation go and starts a new, empty one.
func (f *dropFilter) rotate(now int64) {
	f.cur ^= 1
	f.gens[f.cur], f.counts[f.cur], f.started = nil, 0, now
}

// grow doubles the current generation's table, up to maxSlots.
func (f *dropFilter) grow() {
	old := f.gens[f.cur]
	t := make([]uint64, min(max(2*len(old), minDropTable), f.maxSlots()))
	for _, h := range old {
		if h != 0 {
			insert(t, h)
		}
	}
	f.gens[f.cur] = t
}

// insert puts h (not 0, not in t) into t, which has a free slot, and
// returns its slot.
func insert(t []uint64, h uint64) int {
	i := slot(h, len(t))
	for t[i] != 0 {
		i++
		if i == len(t) {
			i = 0
		}
	}
	t[i] = h
	return i
}

// find returns the slot of h (not 0) in t, or -1.
func find(t []uint64, h uint64) int {
	if len(t) == 0 {
		return -1
	}
	for i := slot(h, len(t)); t[i] != 0; {
		if t[i] == h {
			return i
		}
		i++
		if i == len(t) {
			i = 0
		}
	}
	return -1
}

// empty reports whether the filter holds no table.
func (f *dropFilter) empty() bool { return f.gens[0] == nil && f.gens[1] == nil }

func (f *dropFilter) contains(h uint64) bool {
	if f.perGen == 0 {
		return false
	}
	if h == 0 {
		h = 1
	}
	return find(f.gens[0], h) >= 0 || find(f.gens[1], h) >= 0
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
	kept    *keptCache
	dropped *dropFilter
}

// rememberKept records trace id (hash h) as kept with mark m.
func (d *decisions) rememberKept(id [16]byte, h uint64, m keptMark) {
	d.kept.Set(h, keptValue{check: idCheck(&id), mark: m})
	d.ring.add(id, m)
}

// keptMark returns how trace id (hash h) was marked, if it was kept.
func (d *decisions) keptMark(id *[16]byte, h uint64) (keptMark, bool) {
	if v, ok := d.kept.Get(h); ok && v.check == idCheck(id) {
		return v.mark, true
	}
	return keptMark{}, false
}
