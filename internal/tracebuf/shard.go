package tracebuf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/wire"
	tsampling "github.com/tailsift/tailsift/sampling"
)

// message is what a shard's queue carries: spans to take in, a sync
// barrier, or the final flush.
type message struct {
	req   *request
	spans []int32
	sync  chan struct{}
	flush *flush
}

type flush struct {
	ctx  context.Context
	done chan error
}

// shard owns a disjoint set of traces. Only its goroutine touches its state.
type shard struct {
	b              *Buffer
	id             int
	in             chan message
	traces         map[[16]byte]*trace
	byFirst        list
	byQuiet        list
	groups         *interner
	arena          *arena // holds the traces' records
	ring           *keptRing
	dropped        *dropFilter
	budget         int64
	used           int64 // trace records and overhead; groups are in groups.bytes
	reported       int64 // bytes last reported to the observer
	nTraces        int64
	reportedTraces int64

	quiet, maxWait int64
	maxSpans       int
	observe        bool // the engine looks at each span (ObserveSpan)
	annotate       bool // output.annotate_roots

	// Output batch: encoded ResourceSpans of kept traces and late spans not
	// yet handed on, since outSince (shard clock; -1 when empty).
	out           []byte
	outSpans      int
	outSince      int64
	batchTimeout  int64
	batchMaxSpans int

	// Dropped traces held for rescue.window (rescue.go), oldest first.
	held           map[[16]byte]*trace
	byHeld         list
	heldBytes      int64
	heldTraces     int64
	heldBudget     int64
	window         int64
	reportedHeld   int64
	reportedHeldTr int64

	timer   clock.Timer
	armed   bool
	armedAt int64

	// scratch, reused across messages
	gids    []int32
	slots   []*trace
	late    []lateSpan
	rescue  []int32 // spans of held traces in the current message
	order   []uint32
	seen    map[[8]byte]struct{}
	spanBuf []byte
	ends    []int
	view    tsampling.SpanView
	attrBuf []byte
}

type lateSpan struct {
	idx int32
	th  uint64
}

func newShard(b *Buffer, budget int64, ring, dropped, id int) *shard {
	s := &shard{
		b:             b,
		id:            id,
		in:            make(chan message, shardQueueLen),
		traces:        make(map[[16]byte]*trace),
		groups:        newInterner(),
		arena:         newArena(budget / arenaReserve),
		ring:          newKeptRing(ring),
		dropped:       newDropFilter(dropped),
		budget:        budget,
		observe:       b.engine.NeedsView(),
		annotate:      b.cfg.Output.AnnotateRoots,
		quiet:         int64(b.cfg.Completion.Quiet),
		maxWait:       int64(b.cfg.Completion.MaxWait),
		maxSpans:      b.cfg.Completion.MaxSpans,
		outSince:      -1,
		batchTimeout:  int64(b.cfg.Output.BatchTimeout),
		batchMaxSpans: b.cfg.Output.BatchMaxSpans,
		seen:          make(map[[8]byte]struct{}),
		window:        int64(b.cfg.Rescue.Window),
	}
	if s.window > 0 {
		s.held = make(map[[16]byte]*trace)
	}
	s.byFirst.at = func(t *trace) *links { return &t.byFirst }
	// A held trace has left byFirst: the held list reuses its links.
	s.byHeld.at = func(t *trace) *links { return &t.byFirst }
	s.byQuiet.at = func(t *trace) *links { return &t.byQuiet }
	return s
}

func (s *shard) now() int64 { return int64(s.b.set.Clock.Now().Sub(s.b.base)) }

func (s *shard) run(ctx context.Context) {
	s.timer = s.b.set.Clock.NewTimer(time.Hour)
	s.timer.Stop()
	defer s.timer.Stop()
	defer func() {
		s.arena.close() // no record is read once the shard stops
		s.reportArena()
	}()
	for {
		select {
		case m := <-s.in:
			switch {
			case m.req != nil:
				s.ingest(ctx, m.req, m.spans)
			case m.sync != nil:
				s.expire(ctx, s.now())
				s.flushOutAsync(ctx)
				close(m.sync)
			case m.flush != nil:
				m.flush.done <- s.flushAll(m.flush.ctx)
				return
			}
		case <-s.timer.C():
			s.armed = false
		case <-ctx.Done():
			return
		}
		now := s.now()
		s.expire(ctx, now)
		if s.outSince >= 0 && now-s.outSince >= s.batchTimeout {
			s.flushOutAsync(ctx)
		}
		s.rearm(now)
		s.compactArena()
		s.report()
	}
}

// ingest takes in one message's spans.
func (s *shard) ingest(ctx context.Context, req *request, idx []int32) {
	defer req.release()
	// Spans are stamped when the shard takes them in, not when Ingest
	// accepted them: when the queue lags, the later spans of a trace are
	// still queued, and the quiet rule must not fire before they are seen.
	now := s.now()
	batch := &req.batch
	if cap(s.gids) < len(batch.Scopes) {
		s.gids = make([]int32, len(batch.Scopes))
	}
	s.gids = s.gids[:len(batch.Scopes)]
	for i := range s.gids {
		s.gids[i] = -1
	}
	s.late, s.rescue = s.late[:0], s.rescue[:0]
	lateDropped := 0
	// Pass 1: find each span's trace and what its records will add, so that
	// each trace's record buffer grows once per message, to the exact size.
	s.slots = s.slots[:0]
	for _, i := range idx {
		sp := &batch.Spans[i]
		t := s.traces[sp.TraceID]
		if t == nil {
			h := hashID(&sp.TraceID)
			if th, ok := s.keptThreshold(&sp.TraceID, h); ok {
				s.late = append(s.late, lateSpan{idx: i, th: th})
				s.slots = append(s.slots, nil)
				continue
			}
			// A held trace is looked up first: the dropped filter may have
			// forgotten it while it is still held.
			if s.window > 0 && s.held[sp.TraceID] != nil {
				s.rescue = append(s.rescue, i)
				s.slots = append(s.slots, nil)
				continue
			}
			if s.dropped.contains(h) {
				lateDropped++
				s.slots = append(s.slots, nil)
				continue
			}
			t = s.newTrace(sp, h, now)
		}
		gid := s.groupOf(batch, sp.Scope)
		t.pending += recordSize(gid, sp)
		s.slots = append(s.slots, t)
	}
	// Pass 2: append the records.
	for k, i := range idx {
		t := s.slots[k]
		if t == nil {
			continue
		}
		sp := &batch.Spans[i]
		if t.decided {
			// max_spans decided the trace earlier in this message.
			if th, ok := s.keptThreshold(&sp.TraceID, t.hash); ok {
				s.late = append(s.late, lateSpan{idx: i, th: th})
			} else {
				lateDropped++
			}
			continue
		}
		s.add(t, sp, &batch.Scopes[sp.Scope], uint32(s.gids[sp.Scope]), now)
		if t.sum.SpanCount >= s.maxSpans {
			s.decideAsync(ctx, t, ReasonMaxSpans, now, -1)
		}
	}
	clear(s.slots) // do not keep decided traces reachable
	if len(s.rescue) > 0 {
		lateDropped += s.takeHeld(ctx, batch, now)
	}
	// Drop the message's own references (see pass 1); a group whose spans
	// all went elsewhere is freed here.
	for _, gid := range s.gids {
		if gid >= 0 {
			s.groups.unref(uint32(gid), 1)
		}
	}
	if lateDropped > 0 {
		s.b.set.Observer.Late(false, lateDropped)
	}
	if len(s.late) > 0 {
		s.forwardLate(ctx, batch, now)
	}
	for s.overBudget() && s.byFirst.head != nil {
		s.decideAsync(ctx, s.byFirst.head, ReasonMemory, now, -1)
	}
}

func (s *shard) newTrace(sp *wire.Span, h uint64, now int64) *trace {
	t := &trace{hash: h, first: now, last: now}
	t.sum.SetIdentity(sp.TraceID, sp.TraceState)
	s.traces[sp.TraceID] = t
	s.byFirst.pushBack(t)
	t.size = traceOverhead
	s.used += traceOverhead
	s.nTraces++
	return t
}

// groupOf returns the interned group of scope in batch. The message takes
// a reference of its own on it the first time, held until the message is
// done, so that a decision taken meanwhile cannot free a group it uses.
func (s *shard) groupOf(batch *wire.Batch, scope int32) uint32 {
	if gid := s.gids[scope]; gid >= 0 {
		return uint32(gid)
	}
	gid := s.groups.lookup(&batch.Scopes[scope])
	s.groups.ref(gid)
	s.gids[scope] = int32(gid)
	return gid
}

// recordSize is the size of sp's record in group gid.
func recordSize(gid uint32, sp *wire.Span) int {
	return varintLen(uint64(gid)) + varintLen(uint64(len(sp.Raw))) + len(sp.Raw)
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (s *shard) add(t *trace, sp *wire.Span, sc *wire.Scope, gid uint32, now int64) {
	s.used += s.appendRecord(t, sp, gid)
	sum := &t.sum
	sum.AddSpan(len(sp.Raw), sp.Status, sp.Start, sp.End)
	t.last = now
	if !sp.HasParent {
		if !t.hasRoot && len(sp.TraceState) > 0 {
			// The root's tracestate is the authoritative one for rv and th.
			sum.SetIdentity(sp.TraceID, sp.TraceState)
		}
		t.hasRoot = true
	}
	s.observeSpan(sum, sp, sc)
	if t.hasRoot {
		if t.inQuiet {
			s.byQuiet.moveToBack(t)
		} else {
			s.byQuiet.pushBack(t)
			t.inQuiet = true
		}
	}
}

// appendRecord appends sp's record to t (t.pending bytes were announced),
// takes a reference on its group, and returns how much t's record buffer
// grew, which it has added to t.size.
func (s *shard) appendRecord(t *trace, sp *wire.Span, gid uint32) int64 {
	before := cap(t.recs)
	if t.pending > 0 {
		if need := len(t.recs) + t.pending; need > cap(t.recs) {
			// Exact for a trace's first message; later ones leave 1/8 room,
			// so a trace fed by many messages is not copied quadratically.
			if cap(t.recs) > 0 {
				need += need / 8
			}
			grown := s.arena.alloc(need)[:len(t.recs)]
			copy(grown, t.recs)
			s.arena.release(t.recs)
			t.recs = grown
		}
		t.pending = 0
	}
	t.recs = binary.AppendUvarint(t.recs, uint64(gid))
	t.recs = binary.AppendUvarint(t.recs, uint64(len(sp.Raw)))
	t.recs = append(t.recs, sp.Raw...)
	s.groups.ref(gid)
	grown := int64(cap(t.recs) - before)
	t.size += grown
	return grown
}

// observeSpan lets the engine's span predicates and keys see sp, when a
// policy asked for them.
func (s *shard) observeSpan(sum *tsampling.Trace, sp *wire.Span, sc *wire.Scope) {
	if !s.observe {
		return
	}
	s.view = tsampling.SpanView{ // as samplingtest.View
		Resource: sc.Resource, Scope: sc.Scope, Span: sp.Raw, Name: sp.Name,
		TraceState: sp.TraceState, Flags: sp.Flags, Status: sp.Status,
		Root: !sp.HasParent, Start: sp.Start, End: sp.End,
	}
	s.b.engine.ObserveSpan(sum, &s.view)
	s.view = tsampling.SpanView{} // do not keep the request reachable
}

// expire decides the traces whose completion rule has fired by now.
func (s *shard) expire(ctx context.Context, now int64) {
	for t := s.byFirst.head; t != nil && t.first+s.maxWait <= now; t = s.byFirst.head {
		s.decideAsync(ctx, t, ReasonMaxWait, now, now-(t.first+s.maxWait))
	}
	for t := s.byQuiet.head; t != nil && t.last+s.quiet <= now; t = s.byQuiet.head {
		s.decideAsync(ctx, t, ReasonQuiet, now, now-(t.last+s.quiet))
	}
	for t := s.byHeld.head; t != nil && t.last+s.window <= now; t = s.byHeld.head {
		s.letGo(t)
	}
}

// rearm sets the timer for the next rule to fire, unless it is already set
// for that time or earlier.
func (s *shard) rearm(now int64) {
	next := int64(math.MaxInt64)
	if t := s.byFirst.head; t != nil {
		next = t.first + s.maxWait
	}
	if t := s.byQuiet.head; t != nil {
		next = min(next, t.last+s.quiet)
	}
	if s.outSince >= 0 {
		next = min(next, s.outSince+s.batchTimeout)
	}
	if t := s.byHeld.head; t != nil {
		next = min(next, t.last+s.window)
	}
	if next == math.MaxInt64 || (s.armed && s.armedAt <= next) {
		return
	}
	s.timer.Reset(time.Duration(max(next-now, 0)))
	s.armed, s.armedAt = true, next
}

// report sends the change of buffered bytes and traces to the observer.
func (s *shard) report() {
	used := s.used + s.groups.bytes
	if d, n := used-s.reported, s.nTraces-s.reportedTraces; d != 0 || n != 0 {
		s.b.set.Observer.Buffered(d, n)
		s.reported, s.reportedTraces = used, s.nTraces
	}
	if d, n := s.heldBytes-s.reportedHeld, s.heldTraces-s.reportedHeldTr; d != 0 || n != 0 {
		s.b.set.Observer.Held(d, n)
		s.reportedHeld, s.reportedHeldTr = s.heldBytes, s.heldTraces
	}
	s.reportArena()
}

// decide evaluates t, forgets it and forwards it if kept, returning what
// the next consumer refused. lag is how long after its rule fired this
// happens, or negative for early decisions.
func (s *shard) decide(ctx context.Context, t *trace, reason string, now, lag int64) error {
	d := s.evaluate(t)
	hold := false
	if d.Keep {
		s.keep(t, d, now)
	} else if reason != ReasonMemory {
		// A trace dropped early for lack of memory is not remembered: its
		// later spans start afresh and get a decision of their own, so an
		// ERROR status among them still keeps them.
		s.dropped.add(t.hash)
		hold = s.window > 0 && (reason == ReasonQuiet || reason == ReasonMaxWait)
	}
	s.forget(t, d, reason, now, lag, hold)
	if s.outDue() {
		return s.flushOut(ctx)
	}
	return nil
}

// outDue reports whether the output batch is to be handed on now rather
// than at its timeout: it is full, or batching is off.
func (s *shard) outDue() bool {
	return s.outSince >= 0 && (s.outSpans >= s.batchMaxSpans || s.batchTimeout == 0)
}

// evaluate runs the policies on t.
func (s *shard) evaluate(t *trace) tsampling.Decision {
	t.sum.Now = s.b.set.Clock.Now().UnixNano()
	if s.b.engine.NeedsSpans() {
		spans, err := s.build(t, nil)
		if err != nil {
			s.b.set.Logger.Warn("Trace not decodable for span-level policies", zap.Error(err))
		} else {
			t.sum.Spans, t.sum.HasSpans = spans, true
		}
	}
	d := s.b.engine.Decide(&t.sum)
	t.sum.Spans, t.sum.HasSpans = ptrace.Traces{}, false
	return d
}

// keep remembers t as kept and appends its spans, marked with d's
// threshold, to the output batch.
func (s *shard) keep(t *trace, d tsampling.Decision, now int64) {
	s.rememberKept(t.sum.ID, t.hash, d.Threshold.Unsigned())
	m := tsampling.NewMarker(d.Threshold)
	var rootAttrs []byte
	if s.annotate {
		rootAttrs = s.rootAttrs(d)
	}
	var n int
	s.out, n = s.appendTrace(s.out, t, &m, rootAttrs)
	s.outSpans += n
	if s.outSince < 0 {
		s.outSince = now
	}
}

// decideAsync is decide where no caller waits for the outcome: what the next
// consumer refused is counted (by send) and logged.
func (s *shard) decideAsync(ctx context.Context, t *trace, reason string, now, lag int64) {
	if err := s.decide(ctx, t, reason, now, lag); err != nil {
		s.b.set.Logger.Error("Kept spans not forwarded", zap.Error(err))
	}
}

// rootAttrs returns the attributes output.annotate_roots puts on a kept
// trace's root spans: sampling.rule (the deciding policy) and SampleRate
// (1 in how many traces this one stands for, rounded).
func (s *shard) rootAttrs(d tsampling.Decision) []byte {
	s.attrBuf = wire.AppendStringAttr(s.attrBuf[:0], "sampling.rule", d.Policy)
	rate := int64(math.Round(1 / d.Threshold.Probability()))
	s.attrBuf = wire.AppendIntAttr(s.attrBuf, "SampleRate", max(rate, 1))
	return s.attrBuf
}

// flushOut hands the output batch to the next consumer and returns what it
// refused.
func (s *shard) flushOut(ctx context.Context) error {
	if s.outSince < 0 {
		return nil
	}
	td, err := s.decodeOut()
	if cap(s.out) > 8<<20 {
		s.out = nil // do not hold on to a huge trace's buffer
	} else {
		s.out = s.out[:0]
	}
	s.outSpans, s.outSince = 0, -1
	if td.ResourceSpans().Len() > 0 {
		err = errors.Join(err, s.send(ctx, td))
	}
	return err
}

// decodeOut decodes the output batch. The fast path buffers spans it has
// only scanned, so a span pdata refuses can reach here; it then decodes the
// batch one ResourceSpans at a time, so that such a span costs only its own
// group of its trace, and returns the rest with an error for the loss.
func (s *shard) decodeOut() (ptrace.Traces, error) {
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(s.out)
	if err == nil {
		return td, nil
	}
	td = ptrace.NewTraces()
	var lost int
	var first error
	wire.ForEachResourceSpans(s.out, func(rs []byte, spans int) {
		one, err := u.UnmarshalTraces(rs)
		if err != nil {
			lost += spans
			if first == nil {
				first = err
			}
			return
		}
		one.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	})
	if lost > 0 {
		s.b.set.Observer.ExportFailed(lost)
		return td, fmt.Errorf("%d kept spans not decodable: %w", lost, first)
	}
	return td, nil
}

// flushOutAsync is flushOut where no caller waits for the outcome.
func (s *shard) flushOutAsync(ctx context.Context) {
	if err := s.flushOut(ctx); err != nil {
		s.b.set.Logger.Error("Kept spans not forwarded", zap.Error(err))
	}
}

func (s *shard) rememberKept(id [16]byte, h, th uint64) {
	s.b.kept.Set(h, keptValue{check: idCheck(&id), threshold: th}, keptEntryCost)
	if old, oldTh, evicted := s.ring.add(id, th); evicted {
		oh := hashID(&old)
		if v, ok := s.b.kept.Get(oh); !ok || v.check != idCheck(&old) {
			s.b.kept.Set(oh, keptValue{check: idCheck(&old), threshold: oldTh}, keptEntryCost)
		}
	}
}

func (s *shard) keptThreshold(id *[16]byte, h uint64) (uint64, bool) {
	if th, ok := s.ring.get(*id); ok {
		return th, true
	}
	if v, ok := s.b.kept.Get(h); ok && v.check == idCheck(id) {
		return v.threshold, true
	}
	return 0, false
}

// build decodes a trace's spans into pdata (see appendTrace).
func (s *shard) build(t *trace, m *tsampling.Marker) (ptrace.Traces, error) {
	out, _ := s.appendTrace(nil, t, m, nil)
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(out)
	if err != nil {
		return td, fmt.Errorf("decode trace: %w", err)
	}
	return td, nil
}

// appendTrace appends a trace's spans to out as encoded ResourceSpans
// (TracesData field 1), grouped under their resource and scope, with each
// span's tracestate marked and duplicate span IDs (from client retries)
// removed, and returns the number of spans appended. A nil m leaves
// tracestates as they arrived; rootAttrs, encoded attributes, are appended
// to root spans.
func (s *shard) appendTrace(out []byte, t *trace, m *tsampling.Marker, rootAttrs []byte) ([]byte, int) {
	s.order = s.order[:0]
	t.forEachRecord(func(gid uint32, _ []byte) {
		for _, g := range s.order {
			if g == gid {
				return
			}
		}
		s.order = append(s.order, gid)
	})
	clear(s.seen)
	out = slices.Grow(out, len(t.recs)+len(s.order)*512)
	spans := 0
	for _, g := range s.order {
		s.spanBuf, s.ends = s.spanBuf[:0], s.ends[:0]
		t.forEachRecord(func(gid uint32, raw []byte) {
			if gid != g {
				return
			}
			id, ts := wire.PeekSpan(raw)
			if _, dup := s.seen[id]; dup {
				return
			}
			s.seen[id] = struct{}{}
			if m != nil {
				s.spanBuf = wire.AppendSpan(s.spanBuf, raw, m.Mark(ts))
			} else {
				s.spanBuf = wire.AppendSpan(s.spanBuf, raw, string(ts))
			}
			if len(rootAttrs) > 0 && wire.IsRoot(raw) {
				s.spanBuf = append(s.spanBuf, rootAttrs...)
			}
			s.ends = append(s.ends, len(s.spanBuf))
		})
		spans += len(s.ends)
		out = wire.AppendResourceSpans(out, &s.groups.groups[g].sc, s.spanBuf, s.ends)
	}
	return out, spans
}

// forwardLate sends the late spans of kept traces in s.late at once, each
// marked with its trace's threshold, in the output batch.
func (s *shard) forwardLate(ctx context.Context, batch *wire.Batch, now int64) {
	for scope := range batch.Scopes {
		s.spanBuf, s.ends = s.spanBuf[:0], s.ends[:0]
		for _, l := range s.late {
			sp := &batch.Spans[l.idx]
			if int(sp.Scope) != scope {
				continue
			}
			th, _ := sampling.UnsignedToThreshold(l.th)
			s.spanBuf = wire.AppendSpan(s.spanBuf, sp.Raw, tsampling.NewMarker(th).Mark(sp.TraceState))
			s.ends = append(s.ends, len(s.spanBuf))
		}
		if len(s.ends) > 0 {
			s.out = wire.AppendResourceSpans(s.out, &batch.Scopes[scope], s.spanBuf, s.ends)
			s.outSpans += len(s.ends)
		}
	}
	s.b.set.Observer.Late(true, len(s.late))
	if s.outSince < 0 {
		s.outSince = now
	}
	if s.outDue() {
		s.flushOutAsync(ctx)
	}
}

// send hands td to the next consumer, retrying retryable errors with
// backoff until ctx ends. What is not delivered is counted and returned.
func (s *shard) send(ctx context.Context, td ptrace.Traces) error {
	backoff := 5 * time.Millisecond
	for {
		err := s.b.emit(ctx, td)
		if err == nil {
			return nil
		}
		if consumererror.IsPermanent(err) {
			s.b.set.Observer.ExportFailed(td.SpanCount())
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.b.set.Observer.ExportFailed(td.SpanCount())
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

// flushAll decides every buffered trace, oldest first, and returns what the
// next consumer refused.
func (s *shard) flushAll(ctx context.Context) error {
	// Take in what is still queued: it was accepted, so it is decided too.
	for {
		select {
		case m := <-s.in:
			if m.req != nil {
				s.ingest(ctx, m.req, m.spans)
			} else if m.sync != nil {
				close(m.sync)
			}
			continue
		default:
		}
		break
	}
	var errs []error
	now := s.now()
	for t := s.byFirst.head; t != nil; t = s.byFirst.head {
		if err := s.decide(ctx, t, ReasonShutdown, now, -1); err != nil {
			errs = append(errs, err)
		}
	}
	for t := s.byHeld.head; t != nil; t = s.byHeld.head {
		s.letGo(t)
	}
	if err := s.flushOut(ctx); err != nil {
		errs = append(errs, err)
	}
	s.report()
	return errors.Join(errs...)
}

// forget removes a decided trace from the shard's state, and frees its
// records unless it is to be held for rescue.
func (s *shard) forget(t *trace, d tsampling.Decision, reason string, now, lag int64, hold bool) {
	t.decided = true
	delete(s.traces, t.sum.ID)
	s.byFirst.remove(t)
	if t.inQuiet {
		s.byQuiet.remove(t)
		t.inQuiet = false
	}
	s.nTraces--
	s.b.set.Observer.Decided(d.Policy, d.Keep, t.sum.SpanCount, reason, time.Duration(now-t.first), time.Duration(lag))
	s.used -= t.size
	if hold {
		s.hold(t, now)
		return
	}
	s.release(t)
}

// release frees a trace's records and its references on their groups.
func (s *shard) release(t *trace) {
	t.forEachRecord(func(gid uint32, _ []byte) { s.groups.unref(gid, 1) })
	s.arena.release(t.recs)
	t.recs = nil
}
