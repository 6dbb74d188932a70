package statuspage

import (
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailsift/tailsift/internal/cowmap"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/sampling"
)

// recentMax is how many recent kept errors, slow traces and anomalies a
// Recorder keeps.
const recentMax = 20

// Recorder is a trace buffer's live state for the status page. It is a
// tracebuf.Observer that counts each event and passes it on to the
// observer that records the self-metrics, so the page and /metrics count
// the same events. Its methods are safe for concurrent use.
type Recorder struct {
	id, kind string
	maxBytes int64
	next     tracebuf.Observer
	engine   atomic.Pointer[sampling.Engine]
	adaptive atomic.Pointer[map[string]bool] // policies of type adaptive
	slow     atomic.Pointer[map[string]bool] // policies of type latency

	received, refusedFull, refusedInvalid, refusedLarge atomic.Int64
	lateKept, lateDropped                               atomic.Int64
	bufferedBytes, bufferedTraces                       atomic.Int64
	heldBytes, heldTraces                               atomic.Int64
	exportFailures, deduplicated, rescued               atomic.Int64
	mapped                                              atomic.Int64

	// What Decided and CountDecided write, on every shard's core, is kept
	// off the lines the other counters (written per request) use: the
	// early decisions' counters on a line of their own, and each policy's
	// counts on one each (decidedCount), found without a lock (cowmap).
	// The spans kept and dropped are the sums of the policies' counts.
	_       [64]byte
	early   earlyCounts
	_       [64]byte
	decided cowmap.Map[decidedKey, *decidedCount]

	recentMu sync.Mutex
	recent   [recentMax]KeptTrace // a ring; head is the slot written next
	head     int
	nRecent  int

	rates rates

	routeMu     sync.Mutex
	routeCounts map[string]*routeSum // summed, by route; at most maxRouteCounts
}

// maxRouteCounts bounds the routes whose completion counts a Recorder sums:
// more than the snapshot lists, which are the adaptive policies' busiest.
const maxRouteCounts = 4 * maxRoutes

// routeSum is a route's summed completion counts. est is the traces it
// reported plus those of the route whose place it took (Space-Saving,
// Metwally et al.): the route with the lowest est makes room for a new
// one, so that a route busier than 1/maxRouteCounts of the traces is
// never evicted, and a route that stopped is, once the routes that came
// after it reported more.
type routeSum struct {
	tracebuf.RouteCompletion
	est int64
}

// routeCompletion returns route's summed completion counts.
func (r *Recorder) routeCompletion(route string) tracebuf.RouteCompletion {
	r.routeMu.Lock()
	defer r.routeMu.Unlock()
	if c, ok := r.routeCounts[route]; ok {
		return c.RouteCompletion
	}
	return tracebuf.RouteCompletion{}
}

type decidedKey struct {
	policy string
	keep   bool
}

// decidedCount is a policy's decisions one way. It fills a cache line (the
// allocator aligns 64-byte objects on 64 bytes), so that shards counting
// different policies write different lines.
type decidedCount struct {
	traces, spans atomic.Int64
	_             [48]byte
}

// earlyCounts counts the traces decided early, by reason.
type earlyCounts struct {
	maxSpans, maxBytes, memory, shutdown atomic.Int64
}

var (
	_ tracebuf.KeptObserver    = (*Recorder)(nil)
	_ tracebuf.DecisionCounter = (*Recorder)(nil)
)

// NewRecorder returns a recorder for the buffer of the component id (of
// the given kind: processor or receiver) whose budget is maxBytes, passing
// every event on to next.
func NewRecorder(id, kind string, maxBytes int64, next tracebuf.Observer) *Recorder {
	if next == nil {
		next = tracebuf.NopObserver{}
	}
	return &Recorder{id: id, kind: kind, maxBytes: maxBytes, next: next}
}

// Bind gives the recorder the buffer's engine, whose policies, budget and
// routes the snapshot shows. Call it before the buffer starts.
func (r *Recorder) Bind(e *sampling.Engine) {
	adaptive, slow := map[string]bool{}, map[string]bool{}
	for _, p := range e.Policies() {
		adaptive[p.Name], slow[p.Name] = p.Adaptive, p.Slow
	}
	r.adaptive.Store(&adaptive)
	r.slow.Store(&slow)
	r.engine.Store(e)
}

func (r *Recorder) counts(policy string, keep bool) *decidedCount {
	return r.decided.LoadOrNew(decidedKey{policy, keep}, func() *decidedCount { return new(decidedCount) })
}

// Received implements tracebuf.Observer.
func (r *Recorder) Received(spans int) {
	r.received.Add(int64(spans))
	r.next.Received(spans)
}

// Refused implements tracebuf.Observer.
func (r *Recorder) Refused(reason string, spans int) {
	switch reason {
	case tracebuf.RefusedInvalid:
		r.refusedInvalid.Add(int64(spans))
	case tracebuf.RefusedTooLarge:
		r.refusedLarge.Add(int64(spans))
	default:
		r.refusedFull.Add(int64(spans))
	}
	r.next.Refused(reason, spans)
}

// Decided implements tracebuf.Observer. It counts only the early
// decisions, by reason; the decisions by policy are counted in
// CountDecided, once per shard cycle and not at every decision.
func (r *Recorder) Decided(policy string, keep bool, spans int, reason string, latency, lag time.Duration) {
	switch reason {
	case tracebuf.ReasonMaxSpans:
		r.early.maxSpans.Add(1)
	case tracebuf.ReasonMaxBytes:
		r.early.maxBytes.Add(1)
	case tracebuf.ReasonMemory:
		r.early.memory.Add(1)
	case tracebuf.ReasonShutdown:
		r.early.shutdown.Add(1)
	}
	r.next.Decided(policy, keep, spans, reason, latency, lag)
}

// CountDecided implements tracebuf.DecisionCounter: a shard's decisions of
// one policy and outcome since its last report. The recorder counts them,
// and hands the sums on to next when next counts them that way; otherwise
// next counted them in Decided.
func (r *Recorder) CountDecided(policy string, keep bool, traces, spans int64) {
	c := r.counts(policy, keep)
	c.traces.Add(traces)
	c.spans.Add(spans)
	if c, ok := r.next.(tracebuf.DecisionCounter); ok {
		c.CountDecided(policy, keep, traces, spans)
	}
}

// Kept implements tracebuf.KeptObserver: it remembers kept traces with an
// error span, or kept by a latency policy (slow) or an adaptive one
// (anomalies).
func (r *Recorder) Kept(t *sampling.Trace, d sampling.Decision) {
	isErr := t.StatusMask&sampling.StatusErrorBit != 0
	var anomaly, slow bool
	if a := r.adaptive.Load(); a != nil {
		anomaly = (*a)[d.Policy]
	}
	if s := r.slow.Load(); s != nil {
		slow = (*s)[d.Policy]
	}
	if isErr || anomaly || slow {
		k := KeptTrace{
			TraceID:     hex.EncodeToString(t.ID[:]),
			Policy:      d.Policy,
			Error:       isErr,
			Anomaly:     anomaly,
			Slow:        slow,
			Spans:       t.SpanCount,
			DurationMs:  float64(t.Duration()) / float64(time.Millisecond),
			Probability: d.Probability(),
			DecidedAt:   time.Unix(0, t.Now).UTC(),
		}
		r.recentMu.Lock()
		r.recent[r.head] = k
		r.head = (r.head + 1) % recentMax
		r.nRecent = min(r.nRecent+1, recentMax)
		r.recentMu.Unlock()
	}
	if k, ok := r.next.(tracebuf.KeptObserver); ok {
		k.Kept(t, d)
	}
}

// RouteCompletion implements tracebuf.RouteObserver: it sums the routes'
// completion counts, for the snapshot's routes (of at most maxRouteCounts
// routes, the busiest: see routeSum), and passes them on.
func (r *Recorder) RouteCompletion(c tracebuf.RouteCompletion) {
	r.routeMu.Lock()
	if r.routeCounts == nil {
		r.routeCounts = map[string]*routeSum{}
	}
	if sum, ok := r.routeCounts[c.Route]; ok {
		sum.Traces += c.Traces
		sum.PartialTraces += c.PartialTraces
		sum.LateSpans += c.LateSpans
		sum.est += c.Traces
	} else {
		var base int64
		if len(r.routeCounts) >= maxRouteCounts {
			base = r.evictLeastBusy()
		}
		// Not c itself: it is passed on below, outside the lock.
		r.routeCounts[c.Route] = &routeSum{RouteCompletion: c, est: base + c.Traces}
	}
	r.routeMu.Unlock()
	if ro, ok := r.next.(tracebuf.RouteObserver); ok {
		ro.RouteCompletion(c)
	}
}

// evictLeastBusy forgets the route with the lowest est (the first in
// name order of those tied) and returns its est. A scan of
// maxRouteCounts entries, done only when a route not summed yet reports
// and the table is full; called under routeMu.
func (r *Recorder) evictLeastBusy() int64 {
	var victim string
	var low *routeSum
	for route, sum := range r.routeCounts {
		if low == nil || sum.est < low.est || (sum.est == low.est && route < victim) {
			victim, low = route, sum
		}
	}
	delete(r.routeCounts, victim)
	return low.est
}

// Late implements tracebuf.Observer.
func (r *Recorder) Late(kept bool, spans int) {
	if kept {
		r.lateKept.Add(int64(spans))
	} else {
		r.lateDropped.Add(int64(spans))
	}
	r.next.Late(kept, spans)
}

// Buffered implements tracebuf.Observer.
func (r *Recorder) Buffered(bytes, traces int64) {
	r.bufferedBytes.Add(bytes)
	r.bufferedTraces.Add(traces)
	r.next.Buffered(bytes, traces)
}

// ExportFailed implements tracebuf.Observer.
func (r *Recorder) ExportFailed(spans int) {
	r.exportFailures.Add(int64(spans))
	r.next.ExportFailed(spans)
}

// Held implements tracebuf.Observer.
func (r *Recorder) Held(bytes, traces int64) {
	r.heldBytes.Add(bytes)
	r.heldTraces.Add(traces)
	r.next.Held(bytes, traces)
}

// Deduplicated implements tracebuf.Observer.
func (r *Recorder) Deduplicated(spans int) {
	r.deduplicated.Add(int64(spans))
	r.next.Deduplicated(spans)
}

// Mapped implements tracebuf.Observer.
func (r *Recorder) Mapped(bytes int64) {
	r.mapped.Add(bytes)
	r.next.Mapped(bytes)
}

// Rescued implements tracebuf.Observer.
func (r *Recorder) Rescued(policy string) {
	r.rescued.Add(1)
	r.next.Rescued(policy)
}

// Probed implements tracebuf.Observer.
func (r *Recorder) Probed(kept, dropped int) { r.next.Probed(kept, dropped) }
