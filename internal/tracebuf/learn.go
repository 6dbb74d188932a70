package tracebuf

import (
	"math"
	"math/bits"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// Learned completion (completion.learn, docs/completion.md). Each shard
// keeps a table of routes, the key of the adaptive policy (the root span's
// service and name), with a decayed histogram per route of the largest gap
// between a trace's arrivals from its root on. A decided trace is tracked
// for learn.max after its decision, so that its late spans count in its gap
// (spans that come after the decision are what a too short quiet misses);
// then its gap is learned. The route's quiet is the histogram's quantile ×
// margin, clamped to [min, max] and rounded up to one of the levels, each
// about 19 % above the previous, which are the completion's quiet classes.
//
// Everything here runs on the shard's goroutine and allocates only when a
// route is new to the table.

const (
	maxLevels      = 63   // quiet classes besides the global quiet (a uint64 mask)
	learnMinObs    = 32   // traces of a route before its quiet is learned
	learnWindow    = 2048 // a route's histogram halves when it holds this many
	trackedEntries = 4096 // decided traces tracked per shard for late spans
	reportEvery    = int64(1e9)
)

// route is what a shard knows of one route.
type route struct {
	hash  uint64
	name  string
	hist  []float32 // per level: learned gaps up to it
	total float32
	n     uint32 // gaps learned since the route entered the table
	gen   uint32 // bumped when the slot is given to another route
	class uint8  // its traces' quiet class; 0 is completion.quiet
	dirty bool   // has counts to report
	seen  int64  // last root arrival, for eviction
	// Counts not yet reported (RouteObserver).
	traces, partial, late int64
}

// tracked is a decided trace watched for late spans.
type tracked struct {
	trace uint64 // the trace ID's hash
	route int32
	gen   uint32
	at    int64  // decision
	last  int64  // latest arrival
	gap   int64  // largest gap between arrivals from the root on
	late  int32  // spans after the decision
	scale uint32 // the sampling of tracked traces when it was decided
	learn bool   // decided by quiet or max_wait: its gap is learned
}

// routes is a shard's route table and its tracked decided traces.
type routes struct {
	apply          bool    // learn.enabled: routes get their learned class
	quantile       float64 // learn.quantile
	margin         float64
	levels         []int64 // quiet of class i+1, min to max
	horizon        int64   // how long a decided trace is tracked: learn.max
	hasher         func(*sampling.SpanView) uint64
	label          func(*sampling.SpanView) string
	view           sampling.SpanView
	index          map[uint64]int32
	table          []route
	max            int
	rnd            uint64
	ring           []tracked // FIFO by decision
	head, n        int
	byTrace        map[uint64]int32 // trace hash → ring slot
	sample         uint64           // track traces whose hash>>40 is a multiple (power of two)
	epoch          int64
	epochDecisions int
	dirty          []int32
	reportedAt     int64
}

// newRoutes returns the route table for cfg, or nil when cfg has no routes
// (a Config that was never validated).
func newRoutes(cfg LearnConfig) *routes {
	if cfg.MaxRoutes <= 0 || cfg.Min <= 0 || cfg.Max < cfg.Min {
		return nil
	}
	hasher, err := sampling.DefaultKeyFields.Hasher()
	if err != nil {
		panic(err) // the default fields are valid
	}
	label, err := sampling.DefaultKeyFields.Labeler()
	if err != nil {
		panic(err)
	}
	r := &routes{
		apply: cfg.Enabled, quantile: cfg.Quantile, margin: cfg.Margin,
		levels: quietLevels(int64(cfg.Min), int64(cfg.Max)), horizon: int64(cfg.Max),
		hasher: hasher, label: label,
		index: make(map[uint64]int32, cfg.MaxRoutes), max: cfg.MaxRoutes, rnd: 0x9e3779b97f4a7c15,
		ring: make([]tracked, trackedEntries), byTrace: make(map[uint64]int32, trackedEntries),
		sample: 1,
	}
	return r
}

// quietLevels returns at most maxLevels quiet values from lo to hi, each
// about 19 % (2^¼) above the previous, or a wider step when that needs more.
func quietLevels(lo, hi int64) []int64 {
	ratio := math.Max(math.Pow(2, 0.25), math.Pow(float64(hi)/float64(lo), 1.0/(maxLevels-1)))
	var levels []int64
	for v := float64(lo); ; v *= ratio {
		if int64(v) >= hi || len(levels) == maxLevels-1 {
			return append(levels, hi)
		}
		levels = append(levels, int64(v))
	}
}

// level is the index of the smallest level ≥ d, the last one for d above all.
func (r *routes) level(d int64) int {
	lo, hi := 0, len(r.levels)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if r.levels[mid] >= d {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// rooted notes that root span sp of t arrived now: t belongs to the span's
// route from now on. It returns t's quiet class.
func (r *routes) rooted(t *trace, sp *wire.Span, sc *wire.Scope, now int64) uint8 {
	r.view = SpanView(sp, sc)
	i, isNew := r.slot(r.hasher(&r.view))
	if isNew {
		r.table[i].name = r.label(&r.view)
	}
	r.view = sampling.SpanView{} // do not keep the request reachable
	rt := &r.table[i]
	rt.seen = now
	t.route, t.routeGen = i, rt.gen
	if !r.apply {
		return 0
	}
	return rt.class
}

// slot returns route h's slot, and whether h just got it.
func (r *routes) slot(h uint64) (int32, bool) {
	if i, ok := r.index[h]; ok {
		return i, false
	}
	return r.insert(h), true
}

// insert gives route h a slot, evicting the least recently seen of a few
// slots drawn at random when the table is full.
func (r *routes) insert(h uint64) int32 {
	var i int32
	if len(r.table) < r.max {
		r.table = append(r.table, route{hist: make([]float32, len(r.levels))})
		i = int32(len(r.table) - 1)
	} else {
		i = -1
		for range 8 {
			r.rnd ^= r.rnd << 13
			r.rnd ^= r.rnd >> 7
			r.rnd ^= r.rnd << 17
			j := int32(r.rnd % uint64(len(r.table)))
			if i < 0 || r.table[j].seen < r.table[i].seen {
				i = j
			}
		}
		old := &r.table[i]
		delete(r.index, old.hash)
		if old.dirty {
			// Its unreported counts are lost with it; a route seen so
			// rarely that eight draws pick it has few.
			old.dirty = false
		}
		clear(old.hist)
		*old = route{hist: old.hist, gen: old.gen + 1}
	}
	r.table[i].hash = h
	r.index[h] = i
	return i
}

// of returns t's route, or nil when it has none (no root yet) or its slot
// went to another route since.
func (r *routes) of(t *trace) *route {
	if t.route < 0 || int(t.route) >= len(r.table) {
		return nil
	}
	rt := &r.table[t.route]
	if rt.gen != t.routeGen {
		return nil
	}
	return rt
}

// decided notes t's decision: learn says whether its gap is to be learned
// (a quiet or max_wait decision; the others are early by design).
func (r *routes) decided(t *trace, learn bool, now int64) {
	r.expire(now)
	rt := r.of(t)
	if rt == nil {
		return
	}
	r.count(t.route, rt)
	rt.traces++
	if now-r.epoch >= r.horizon {
		// Track few enough traces that each is watched for the whole
		// horizon: at most the ring's size per horizon.
		r.sample = 1 << bits.Len64(uint64(r.epochDecisions/len(r.ring)))
		r.epoch, r.epochDecisions = now, 0
	}
	r.epochDecisions++
	if (t.hash>>40)&(r.sample-1) != 0 {
		return
	}
	if r.n == len(r.ring) {
		r.finish()
	}
	slot := (r.head + r.n) % len(r.ring)
	r.ring[slot] = tracked{
		trace: t.hash, route: t.route, gen: t.routeGen, at: now, last: t.last, gap: t.gap,
		scale: uint32(r.sample), learn: learn,
	}
	r.byTrace[t.hash] = int32(slot)
	r.n++
}

// late notes a span of the decided trace whose ID hashes to h, arrived now.
func (r *routes) late(h uint64, now int64) {
	slot, ok := r.byTrace[h]
	if !ok {
		return
	}
	e := &r.ring[slot]
	e.gap = max(e.gap, now-e.last)
	e.last = now
	rt := &r.table[e.route]
	if rt.gen != e.gen {
		return
	}
	r.count(e.route, rt)
	if e.late == 0 {
		rt.partial += int64(e.scale)
	}
	e.late++
	rt.late += int64(e.scale)
}

// count marks route i as having counts to report.
func (r *routes) count(i int32, rt *route) {
	if !rt.dirty {
		rt.dirty = true
		r.dirty = append(r.dirty, i)
	}
}

// expire learns the gaps of the tracked traces whose horizon has passed.
func (r *routes) expire(now int64) {
	for r.n > 0 && now-r.ring[r.head].at >= r.horizon {
		r.finish()
	}
}

// finish learns the oldest tracked trace's gap and stops tracking it.
func (r *routes) finish() {
	e := &r.ring[r.head]
	if slot, ok := r.byTrace[e.trace]; ok && int(slot) == r.head {
		// (A trace decided twice, as one dropped early for memory can
		// be, is tracked by its latest decision.)
		delete(r.byTrace, e.trace)
	}
	if rt := &r.table[e.route]; e.learn && rt.gen == e.gen {
		r.learn(rt, e.gap)
	}
	r.head = (r.head + 1) % len(r.ring)
	r.n--
}

// learn adds one trace's gap to rt and sets its class anew. The histogram
// holds gap × margin, so that the class is the level of its quantile,
// rounded up once.
func (r *routes) learn(rt *route, gap int64) {
	rt.hist[r.level(int64(float64(gap)*r.margin))]++
	rt.total++
	if rt.n < math.MaxUint32 {
		rt.n++
	}
	if rt.total >= learnWindow {
		for i := range rt.hist {
			rt.hist[i] /= 2
		}
		rt.total /= 2
	}
	if rt.n >= learnMinObs {
		rt.class = uint8(1 + r.level(r.quantileOf(rt)))
	}
}

// quantileOf is the upper edge of the level that holds rt's quantile of
// gap × margin.
func (r *routes) quantileOf(rt *route) int64 {
	above := float32(1-r.quantile) * rt.total
	var acc float32
	for i := len(rt.hist) - 1; i > 0; i-- {
		acc += rt.hist[i]
		if acc > above {
			return r.levels[i]
		}
	}
	return r.levels[0]
}

// quiet is route rt's quiet: learned, or global when it has none yet.
func (r *routes) quiet(rt *route, global int64) int64 {
	if !r.apply || rt.class == 0 {
		return global
	}
	return r.levels[rt.class-1]
}

// report hands the routes' counts to obs, at most once a second of the
// clock unless force.
func (r *routes) report(obs RouteObserver, now int64, force bool) {
	if len(r.dirty) == 0 || (!force && now-r.reportedAt < reportEvery) {
		return
	}
	r.reportedAt = now
	for _, i := range r.dirty {
		rt := &r.table[i]
		if !rt.dirty {
			continue
		}
		obs.RouteCompletion(RouteCompletion{
			Route: rt.name, Traces: rt.traces, PartialTraces: rt.partial, LateSpans: rt.late,
		})
		rt.traces, rt.partial, rt.late, rt.dirty = 0, 0, 0, false
	}
	r.dirty = r.dirty[:0]
}

// dropCounts forgets the counts no observer takes.
func (r *routes) dropCounts() {
	for _, i := range r.dirty {
		rt := &r.table[i]
		rt.traces, rt.partial, rt.late, rt.dirty = 0, 0, 0, false
	}
	r.dirty = r.dirty[:0]
}
