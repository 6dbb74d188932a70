package tracebuf

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// message is what a shard's queue carries: spans to take in, a sync
// barrier, a command to run in the shard's goroutine, or the final flush.
type message struct {
	req   *request
	spans []int32
	sync  chan struct{}
	run   func(ctx context.Context, s *shard)
	flush *flush
}

type flush struct {
	ctx context.Context
}

// shardDeps are what a shard uses of the Buffer that owns it, shared by
// every shard.
type shardDeps struct {
	engine   *sampling.Engine
	observer Observer
	logger   *zap.Logger
	clock    clock.Clock
	base     time.Time // the clock's origin for the shard's int64 times
	kept     *keptCache
	emit     Emit
	emitWire EmitWire          // nil: output batches go to emit as pdata (SetEmitWire)
	keptWire func(*wire.Batch) // SetKeptWire
	taken    func(shard int)   // a message left shard's queue: its slot is free

	store *storeHook // nil without storage (store.go)
}

// shardDeps returns what b's shards use of it.
func (b *Buffer) shardDeps() shardDeps {
	return shardDeps{
		engine: b.engine, observer: b.set.Observer, logger: b.set.Logger,
		clock: b.set.Clock, base: b.base, kept: b.kept, emit: b.emit,
		taken: b.taken,
	}
}

// shardConfig is one shard's share of the Config.
type shardConfig struct {
	budget     int64 // buffer.max_bytes / shards
	heldBudget int64 // rescue.max_bytes / shards
	window     int64 // rescue.window
	ring       int   // entries of the kept ring
	dropped    int   // entries of the dropped filter
	completion CompletionConfig
	output     OutputConfig
}

// shardConfigFor splits cfg among n shards.
func shardConfigFor(cfg Config, n int) shardConfig {
	return shardConfig{
		budget:     int64(cfg.Buffer.MaxBytes) / int64(n),
		heldBudget: int64(cfg.Rescue.MaxBytes) / int64(n),
		window:     int64(cfg.Rescue.Window),
		// A quarter of the kept budget goes to the shards' rings, which list
		// their kept decisions for a handover (32 bytes an entry: ID and mark).
		ring:       int(int64(cfg.DecisionCache.KeptMaxBytes) / 4 / 32 / int64(n)),
		dropped:    cfg.DecisionCache.DroppedMaxEntries / n,
		completion: cfg.Completion,
		output:     cfg.Output,
	}
}

// usage is the memory the undecided traces take, and what was last reported
// of it.
type usage struct {
	groups         *interner
	arena          *arena // holds the traces' records
	budget         int64
	used           int64 // trace records and overhead; groups are in groups.bytes
	nTraces        int64
	reported       int64 // bytes last reported to the observer
	reportedTraces int64
}

func (u *usage) bytes() int64 { return u.used + u.groups.bytes }

// wakeup is the shard's timer for the next rule, batch timeout or hold end.
type wakeup struct {
	timer   clock.Timer
	armed   bool
	armedAt int64
}

// scratch is reused across messages.
type scratch struct {
	gids   []int32  // the message's interned group per scope, -1 until used
	groups []uint64 // the request's group hash per scope (request.groups)
	slots  []*trace // each span's trace (nil: late, held or dropped)
	late   []lateSpan
	rescue []int32 // spans of held traces in the current message
	view   sampling.SpanView
}

// shard owns a disjoint set of traces. Its state is touched by whoever holds
// mu: its goroutine, or an Ingest call that found the shard idle and takes
// its message in itself (tryIngest).
type shard struct {
	deps shardDeps
	id   int
	in   chan message

	// mu is held by whoever works on the shard's state. Messages leave in
	// only under it, so they run in the order they were posted, whoever
	// runs them.
	mu sync.Mutex
	// notify wakes the goroutine for a posted message (capacity 1).
	notify chan struct{}
	// head is a message an Ingest call took off the queue and left to the
	// goroutine (not a request: a sync, a command or the final flush); it
	// runs before what is still queued.
	head    message
	hasHead bool
	// kick wakes the goroutine for what a message run by an Ingest call
	// left to it: handing on the output batch and compaction (the
	// store's records it queues itself).
	kick    chan struct{}
	inline  bool       // an Ingest call runs the shard: flushOut leaves the batch to the goroutine
	lent    bool       // a call given up on may still read the output batch's bytes (deliver)
	caller  caller     // the goroutine deliver calls the next consumer on
	outScan wire.Batch // sendWire's scan of a request, for keptWire and the store
	// queuedSnap holds, while a delivery begins, the requests routed here
	// and recorded to the store that the shard has not taken in
	// (storequeued.go).
	queuedSnap []*request

	traces   map[[16]byte]*trace // undecided
	due      completion
	usage    usage
	decided  decisions
	settle   settling // giving memory back after a spike
	observe  bool     // the engine looks at each span (ObserveSpan)
	annotate annotate // output.annotate_roots, annotate_spans

	out  outBatch
	held heldSet
	wake wakeup
	msg  scratch
	enc  encoder
	// counts are the decisions not yet counted by a DecisionCounter
	// observer (report hands them on); probes, the probes not yet
	// reported.
	counts decisionCounts
	probes probeCounts
}

// probeCounts counts the traces a learned quiet probed (shard.probe).
type probeCounts struct{ kept, dropped int }

type lateSpan struct {
	idx  int32
	mark keptMark
}

func newShard(deps shardDeps, cfg shardConfig, id int) *shard {
	s := &shard{
		deps:     deps,
		id:       id,
		in:       make(chan message, shardQueueLen),
		notify:   make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		traces:   make(map[[16]byte]*trace),
		due:      newCompletion(cfg.completion, deps.engine.ArrivalMask()),
		usage:    usage{groups: newInterner(), arena: newArena(cfg.budget / arenaReserve), budget: cfg.budget},
		decided:  decisions{ring: newKeptRing(cfg.ring), dropped: newDropFilter(cfg.dropped, dropAge(cfg)), kept: deps.kept},
		observe:  deps.engine.NeedsView(),
		annotate: newAnnotate(cfg.output, deps.engine),
		out: outBatch{
			since:    -1,
			timeout:  int64(cfg.output.BatchTimeout),
			maxSpans: cfg.output.BatchMaxSpans,
		},
		held:   heldSet{window: cfg.window, budget: cfg.heldBudget},
		enc:    encoder{seen: make(map[seenKey][]byte)},
		counts: newDecisionCounts(deps.observer),
	}
	if cfg.completion.MaxTraceBytes > 0 {
		// At most half the shard's budget: one trace never fills it.
		s.due.maxBytes = uint64(max(min(int64(cfg.completion.MaxTraceBytes), cfg.budget/2), 1))
	}
	if s.held.window > 0 {
		s.held.byID = make(map[[16]byte]*trace)
		s.due.rescuable = true
	}
	// A held trace has left byFirst (s.due.byFirst): the held list
	// reuses its links.
	return s
}

func (s *shard) now() int64 { return int64(s.deps.clock.Now().Sub(s.deps.base)) }

// ingest takes in one message's spans.
func (s *shard) ingest(ctx context.Context, req *request, idx []int32) {
	defer req.release()
	s.takenIn(req)
	// Spans are stamped when the shard takes them in, not when Ingest
	// accepted them: when the queue lags, the later spans of a trace are
	// still queued, and the quiet rule must not fire before they are seen.
	now := s.now()
	batch := &req.batch
	m := &s.msg
	if cap(m.gids) < len(batch.Scopes) {
		m.gids = make([]int32, len(batch.Scopes))
	}
	m.gids = m.gids[:len(batch.Scopes)]
	for i := range m.gids {
		m.gids[i] = -1
	}
	m.groups = req.groups
	m.late, m.rescue = m.late[:0], m.rescue[:0]
	lateDropped := 0
	// Pass 1: find each span's trace and what its records will add, so that
	// each trace's record buffer grows once per message, to the exact size.
	m.slots = m.slots[:0]
	// Spans of a trace tend to come together (an SDK batches a service's
	// spans as they end): a span of the previous span's trace skips the
	// table.
	var prev *trace
	for _, i := range idx {
		sp := &batch.Spans[i]
		t := prev
		if t == nil || t.sum.ID != sp.TraceID {
			t = s.traces[sp.TraceID]
		}
		if t == nil {
			h := req.hashes[i] // hashID(&sp.TraceID), from the routing
			if mark, ok := s.decided.keptMark(&sp.TraceID, h); ok {
				s.due.late(h, now)
				m.late = append(m.late, lateSpan{idx: i, mark: mark})
				m.slots = append(m.slots, nil)
				continue
			}
			// A held trace is looked up first: the dropped filter may have
			// forgotten it while it is still held.
			if s.held.window > 0 && s.held.byID[sp.TraceID] != nil {
				s.due.late(h, now)
				m.rescue = append(m.rescue, i)
				m.slots = append(m.slots, nil)
				continue
			}
			if s.decided.dropped.contains(h) {
				s.due.late(h, now)
				lateDropped++
				s.lateDropped(batch, sp, h)
				m.slots = append(m.slots, nil)
				continue
			}
			t = s.newTrace(sp, h, now)
		}
		gid := s.groupOf(batch, sp.Scope)
		t.pending += recordSize(gid, sp)
		m.slots = append(m.slots, t)
		prev = t
	}
	// Pass 2: append the records.
	for k, i := range idx {
		t := m.slots[k]
		if t == nil {
			continue
		}
		sp := &batch.Spans[i]
		if t.decided {
			// max_spans decided the trace earlier in this message.
			s.due.late(t.hash, now)
			if mark, ok := s.decided.keptMark(&sp.TraceID, t.hash); ok {
				m.late = append(m.late, lateSpan{idx: i, mark: mark})
			} else {
				lateDropped++
				// As a late span in a later request is: an ERROR span
				// after the one that reached max_spans in the same
				// request was lost, with the store that rescues it when
				// it comes later. The drop goes to the store first: the
				// rescuer reads the trace's decision there, and gave up
				// on a trace not decided yet.
				s.flushStore()
				s.lateDropped(batch, sp, t.hash)
			}
			continue
		}
		s.usage.used += s.addSpan(t, sp, &batch.Scopes[sp.Scope], uint32(m.gids[sp.Scope]))
		s.due.touch(t, sp, &batch.Scopes[sp.Scope], now)
		if reason := s.due.early(t); reason != "" {
			s.decideAsync(ctx, t, reason, now, -1)
		}
	}
	clear(m.slots) // do not keep decided traces reachable
	if len(m.rescue) > 0 {
		lateDropped += s.takeHeld(ctx, batch, now)
	}
	// Drop the message's own references (see pass 1); a group whose spans
	// all went elsewhere is freed here.
	for _, gid := range m.gids {
		if gid >= 0 {
			s.usage.groups.unref(uint32(gid), 1)
		}
	}
	if lateDropped > 0 {
		s.deps.observer.Late(false, lateDropped)
	}
	if len(m.late) > 0 {
		s.forwardLate(ctx, batch, now)
	}
	for s.overBudget() && s.due.byFirst.head != nil {
		s.decideAsync(ctx, s.due.byFirst.head, ReasonMemory, now, -1)
	}
	m.groups = nil // the request goes back to the pool
}

func (s *shard) newTrace(sp *wire.Span, h uint64, now int64) *trace {
	t := &trace{hash: h, first: now, last: now, route: -1}
	t.sum.ID = sp.TraceID // and the rest of its identity with its first span (AddSpan)
	s.traces[sp.TraceID] = t
	s.due.byFirst.pushBack(t)
	t.size = traceOverhead
	s.usage.used += traceOverhead
	s.usage.nTraces++
	return t
}

// groupOf returns the interned group of scope in batch. The message takes
// a reference of its own on it the first time, held until the message is
// done, so that a decision taken meanwhile cannot free a group it uses.
func (s *shard) groupOf(batch *wire.Batch, scope int32) uint32 {
	if gid := s.msg.gids[scope]; gid >= 0 {
		return uint32(gid)
	}
	gid := s.usage.groups.lookupHashed(&batch.Scopes[scope], s.msg.groups[scope])
	s.usage.groups.ref(gid)
	s.msg.gids[scope] = int32(gid)
	return gid
}

// addSpan appends sp's record to t (its size announced in t.pending) and
// adds sp to t's summary: counts, size, status, times, the identity the
// first root brings with its tracestate, and what the policies observe of
// spans. It returns how much t's records grew, which it has added to t.size.
// The shard and rescue add spans with it.
func (s *shard) addSpan(t *trace, sp *wire.Span, sc *wire.Scope, gid uint32) int64 {
	grown := s.appendRecord(t, sp, gid)
	t.hasRoot = AddSpan(&t.sum, t.hasRoot, sp)
	s.observeSpan(&t.sum, sp, sc)
	return grown
}

// observeSpan lets the engine's span predicates and keys see sp, when a
// policy asked for them.
func (s *shard) observeSpan(sum *sampling.Trace, sp *wire.Span, sc *wire.Scope) {
	if !s.observe {
		return
	}
	s.msg.view = SpanView(sp, sc)
	s.deps.engine.ObserveSpan(sum, &s.msg.view)
	s.msg.view = sampling.SpanView{} // do not keep the request reachable
}

// expire decides the traces whose completion rule has fired by now.
func (s *shard) expire(ctx context.Context, now int64) {
	c := &s.due
	for t := c.byFirst.head; t != nil && t.first+c.maxWait <= now; t = c.byFirst.head {
		s.decideAsync(ctx, t, ReasonMaxWait, now, now-(t.first+c.maxWait))
	}
	for t, lag := c.quietDue(now); t != nil; t, lag = c.quietDue(now) {
		if c.probing(t) {
			s.probe(ctx, t, now, lag)
			continue
		}
		s.decideAsync(ctx, t, ReasonQuiet, now, lag)
	}
	s.expireHeld(now)
}

// report sends the decision counts (DecisionCounter), the probes and the
// change of buffered bytes and traces to the observer.
func (s *shard) report() {
	s.counts.flush()
	if s.probes != (probeCounts{}) {
		s.deps.observer.Probed(s.probes.kept, s.probes.dropped)
		s.probes = probeCounts{}
	}
	u := &s.usage
	used := u.bytes()
	if d, n := used-u.reported, u.nTraces-u.reportedTraces; d != 0 || n != 0 {
		s.deps.observer.Buffered(d, n)
		u.reported, u.reportedTraces = used, u.nTraces
	}
	h := &s.held
	if d, n := h.bytes-h.reportedBytes, h.traces-h.reportedTraces; d != 0 || n != 0 {
		s.deps.observer.Held(d, n)
		h.reportedBytes, h.reportedTraces = h.bytes, h.traces
	}
	s.reportArena()
}
