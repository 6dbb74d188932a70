package tracebuf

import (
	"math"
	"math/bits"
	"time"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// completion holds the undecided traces in the order their completion rules
// fire, and the rules.
//
// The quiet rule has one list per quiet class: class 0 is completion.quiet,
// class i in 1..n-1 the learned level i-1 (learn.go), and class n+i the
// probation of class i: the traces its shorter quiet found dropped, which
// wait out completion.quiet unless a span comes (safe, probe). A trace
// joins its route's class when its root arrives and stays in it, but for
// that probation. Within a class every trace waits the same quiet, so a
// FIFO list by latest arrival is ordered by deadline (a probation class is
// filled in its class's deadline order, which is latest-arrival order too);
// the rule's next deadline is the earliest head among the classes in use (a
// mask), at most 128 of them.
type completion struct {
	byFirst        list // all undecided traces, by first arrival (max_wait)
	classes        []quietClass
	learned        uint8     // n: classes[n+i] is the probation of classes[i]
	used           [2]uint64 // bit i: classes[i] is not empty
	quiet, maxWait int64
	maxSpans       int
	maxBytes       uint64  // completion.max_trace_bytes, math.MaxUint64 when off
	arrival        uint8   // status bits that decide on arrival (sampling.Engine.ArrivalMask)
	routes         *routes // nil when the config has none
	// rescuable: a dropped trace is still kept whole by a late ERROR span
	// (the store, or rescue.window). Without it a learned quiet shorter
	// than completion.quiet only probes a trace that carries no ERROR span
	// (see safe): kept, it leaves; dropped, it waits out completion.quiet,
	// so that the shorter wait never drops an error trace whose ERROR span
	// comes later.
	rescuable bool
}

// quietClass is the traces that wait the same quiet, by latest arrival.
type quietClass struct {
	list  list
	quiet int64
	due   int64 // the head's deadline, kept so that next reads no trace
	grid  int64 // the class wakes its shard on this grid (gridFor quiet / 20)
}

// headMoved sets q.due after a change of q's head; it reports whether q
// is empty now.
func (q *quietClass) headMoved() bool {
	if h := q.list.head; h != nil {
		q.due = h.last + q.quiet
		return false
	}
	return true
}

// newCompletion returns the rules of cfg, with learning when cfg has it.
func newCompletion(cfg CompletionConfig, arrival uint8) completion {
	c := completion{
		quiet:    int64(cfg.Quiet),
		maxWait:  int64(cfg.MaxWait),
		maxSpans: cfg.MaxSpans,
		maxBytes: math.MaxUint64,
		arrival:  arrival,
	}
	// No quiet outlasts max_wait: the learned bounds are cut to it, so that
	// a config that only shortens max_wait keeps its default learning.
	learn := cfg.Learn
	learn.Max = min(learn.Max, cfg.MaxWait)
	learn.Min = min(learn.Min, learn.Max)
	c.routes = newRoutes(learn)
	c.classes = []quietClass{{quiet: c.quiet}}
	if c.routes != nil && c.routes.apply {
		for _, q := range c.routes.levels {
			c.classes = append(c.classes, quietClass{quiet: q})
		}
		// The probation classes, one per class (class 0's stays empty).
		c.learned = uint8(len(c.classes))
		for range c.learned {
			c.classes = append(c.classes, quietClass{quiet: c.quiet})
		}
	}
	for i := range c.classes {
		c.classes[i].list.quiet = true
		c.classes[i].grid = gridFor(c.classes[i].quiet / wakeGridShare)
	}
	return c
}

// next is when the shard is to wake for the first rule to fire, or
// math.MaxInt64: each deadline rounded up to its grid, so that a lightly
// loaded process wakes at most 40 times a second for the quiet classes of
// 500 ms and more (every shard and class at the same instants), 80 for
// those of 250 ms, and so on; a rule
// fires at most 5 % of its quiet late. A shard busy with requests decides
// at each request, on time.
func (c *completion) next() int64 {
	next := int64(math.MaxInt64)
	if t := c.byFirst.head; t != nil {
		next = roundUp(t.first+c.maxWait, wakeGridMax)
	}
	for w, used := range c.used {
		for m := used; m != 0; m &= m - 1 {
			q := &c.classes[w<<6|bits.TrailingZeros64(m)]
			next = min(next, roundUp(q.due, q.grid))
		}
	}
	return next
}

// wakeGridMax is the coarsest grid a shard's wake-ups are rounded up to;
// wakeGridShare is the share of a quiet its grid step may take. Measured on
// the SDK-shaped workload at 10 000 spans/s (benchmarks/README.md, "Quiet
// run 2"): a 100 ms grid and a 25 ms one saved the fast path about the same
// CPU against no grid, but took the p99 added decision latency from 58 ms to
// 185 ms and 102 ms respectively. Since the output batch leaves at the
// wake-up that decides its traces (shard.tend), 50 ms gives a p99 of 51–61
// ms ("Fast path, round 3"): at the default output.batch_timeout (50 ms)
// the kept traces no longer wait a second wake-up.
const (
	wakeGridMax   = int64(50 * time.Millisecond)
	wakeGridShare = 20
)

// gridFor is the step a deadline that tolerates being tol late is rounded
// up to: wakeGridMax halved until it is at most tol, at least 1 ns. The
// steps nest (every 50 ms instant is also on the 25 ms grid), and every shard's
// grid starts at the Buffer's base, so deadlines that are near each other,
// in one shard or several, wake the process once.
func gridFor(tol int64) int64 {
	g := wakeGridMax
	for g > 1 && g > tol {
		g /= 2
	}
	return g
}

// roundUp rounds at up to a multiple of g; math.MaxInt64 stays.
func roundUp(at, g int64) int64 {
	if at == math.MaxInt64 || g <= 1 || at > math.MaxInt64-g {
		return at
	}
	return (at + g - 1) / g * g
}

// quietDue returns a trace whose quiet rule has fired by now, and how long
// ago, or nil.
func (c *completion) quietDue(now int64) (*trace, int64) {
	for w, used := range c.used {
		for m := used; m != 0; m &= m - 1 {
			if q := &c.classes[w<<6|bits.TrailingZeros64(m)]; q.due <= now {
				return q.list.head, now - q.due
			}
		}
	}
	return nil, 0
}

// early returns the rule that decides t at once, on what has arrived, or "".
func (c *completion) early(t *trace) string {
	switch {
	case t.sum.StatusMask&c.arrival != 0:
		return ReasonArrival
	case t.sum.SpanCount >= c.maxSpans:
		return ReasonMaxSpans
	case t.sum.SizeBytes > c.maxBytes:
		return ReasonMaxBytes
	}
	return ""
}

// touch notes that span sp of t, under scope sc, arrived now: once its root
// is in, the quiet rule counts from its latest span, and the largest gap
// between its arrivals is measured for learning.
func (c *completion) touch(t *trace, sp *wire.Span, sc *wire.Scope, now int64) {
	if !t.hasRoot {
		t.last = now
		return
	}
	if t.inQuiet {
		t.gap = max(t.gap, now-t.last)
		t.last = now
		if t.class > c.learned {
			// A span came to a trace on probation: it goes back to its
			// route's shorter class, to be probed again after that
			// quiet (or decided, when the span brought an ERROR). It is
			// the latest arrival, so it goes to the back of that class,
			// in order; at the back of its probation class it would not
			// be, since the traces the probe moves there later arrived
			// last before it did.
			c.unquiet(t)
			c.join(t, t.class-c.learned)
			return
		}
		q := &c.classes[t.class]
		wasHead := q.list.head == t
		q.list.moveToBack(t)
		if wasHead {
			q.headMoved()
		}
		return
	}
	// sp is the root: t's class is its route's.
	t.last = now
	class := uint8(0)
	if c.routes != nil {
		class = c.routes.rooted(t, sp, sc, now)
	}
	c.join(t, c.safe(t, class))
}

// safe returns the class t waits in when its route's is class. When class
// is shorter than completion.quiet (class 0), a dropped trace cannot be
// rescued (rescuable) and t carries no ERROR span yet, the shorter quiet
// only probes t (probe): the policies keep it then, or it waits out
// completion.quiet on probation, so that a late ERROR span still finds it
// buffered. (A learned quiet longer than completion.quiet always applies.)
func (c *completion) safe(t *trace, class uint8) uint8 {
	t.probe = class != 0 && !c.rescuable && c.classes[class].quiet < c.quiet &&
		t.sum.StatusMask&sampling.StatusErrorBit == 0
	return class
}

// probing reports whether the quiet of t's class, which fired, only
// probes t (safe): t has no ERROR span, and a drop would put it on
// probation rather than decide it.
func (c *completion) probing(t *trace) bool {
	return t.probe && t.class < c.learned && t.sum.StatusMask&sampling.StatusErrorBit == 0
}

// probation moves t, which the policies dropped when its class's quiet
// fired, to that class's probation: it is decided completion.quiet after
// its latest arrival, unless a span arrives first, which takes it back to
// its class (touch). The policies decided t once: the next decisions are
// redecisions (probed).
func (c *completion) probation(t *trace) {
	class := t.class
	c.unquiet(t)
	t.probed = true
	c.join(t, c.learned+class)
}

// join puts t at the back of quiet class class: t is its latest arrival,
// or (probation) the class is filled in that order.
func (c *completion) join(t *trace, class uint8) {
	t.class = class
	q := &c.classes[class]
	q.list.pushBack(t)
	if q.list.head == t {
		q.headMoved()
		c.used[class>>6] |= 1 << (class & 63)
	}
	t.inQuiet = true
}

// unquiet takes t out of its quiet class.
func (c *completion) unquiet(t *trace) {
	if !t.inQuiet {
		return
	}
	q := &c.classes[t.class]
	wasHead := q.list.head == t
	q.list.remove(t)
	if wasHead && q.headMoved() {
		c.used[t.class>>6] &^= 1 << (t.class & 63)
	}
	t.inQuiet = false
}

// decided notes t's decision for its route, before t is unlinked.
func (c *completion) decided(t *trace, reason string, now int64) {
	if c.routes != nil {
		c.routes.decided(t, reason == ReasonQuiet || reason == ReasonMaxWait, now)
	}
}

// late notes a span of a decided trace, whose ID hashes to h, arrived now.
func (c *completion) late(h uint64, now int64) {
	if c.routes != nil {
		c.routes.late(h, now)
	}
}

// report learns from the tracked traces whose horizon passed, and hands
// the routes' completion counts to obs when it takes them.
func (c *completion) report(obs Observer, now int64, force bool) {
	if c.routes == nil {
		return
	}
	c.routes.expire(now)
	if ro, ok := obs.(RouteObserver); ok {
		c.routes.report(ro, now, force)
	} else {
		c.routes.dropCounts()
	}
}
