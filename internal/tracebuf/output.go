package tracebuf

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// outBatch is a shard's output batch: encoded ResourceSpans of kept traces
// and late spans not yet handed on, since since (shard clock; -1 when
// empty). It is cut into requests of at most maxSpans spans as it fills (a
// trace larger than that is a request of its own): the cut requests lie at
// the front of buf, and the open one, which more spans may join, after them.
type outBatch struct {
	buf      []byte
	spans    int // in buf
	since    int64
	timeout  int64 // output.batch_timeout
	maxSpans int   // output.batch_max_spans; 0: no cuts (build, takeForeign)
	cuts     []outCut
	open     outMark // where the open request starts, and its spans
	openedAt int64   // when the open request took its first spans
}

// outCut is a request cut from the output batch: it ends at end in buf.
type outCut struct {
	end, spans int
}

// outMark is a place in the output batch: its length then, and the open
// request's spans then.
type outMark struct {
	at, spans int
}

// start notes that the batch holds spans from now on, if it was empty.
func (o *outBatch) start(now int64) {
	if o.since < 0 {
		o.since = now
	}
	if o.open.spans == 0 {
		o.openedAt = now
	}
}

// due reports whether the output batch is to be handed on now rather
// than at its timeout: a request is cut, or batching is off.
func (o *outBatch) due() bool {
	return o.since >= 0 && (len(o.cuts) > 0 || o.timeout == 0)
}

// appendSpans appends spans, encoded Span messages ending at ends, to the
// batch as one ResourceSpans under sc. Kept traces, late spans and rescued
// traces all join the batch through it; it does not cut the batch (a
// trace's groups stay together: see mark and cutTrace).
func (o *outBatch) appendSpans(sc *wire.Scope, spans []byte, ends []int, now int64) {
	if len(ends) == 0 {
		return
	}
	o.start(now)
	o.buf = wire.AppendResourceSpans(o.buf, sc, spans, ends)
	o.spans += len(ends)
	o.open.spans += len(ends)
}

// mark is where the next trace begins.
func (o *outBatch) mark() outMark {
	return outMark{len(o.buf), o.open.spans}
}

// cutTrace cuts the batch after a trace appended from m on: before the
// trace, when the trace takes the open request past maxSpans, and after it
// when the open request has reached maxSpans, so that each request holds
// at most maxSpans spans or one trace.
func (o *outBatch) cutTrace(m outMark, now int64) {
	if o.maxSpans <= 0 {
		return
	}
	if o.open.spans > o.maxSpans && m.spans > 0 {
		o.cuts = append(o.cuts, outCut{m.at, m.spans})
		o.open = outMark{m.at, o.open.spans - m.spans}
		o.openedAt = now
	}
	if o.open.spans >= o.maxSpans {
		o.cut()
	}
}

// cut ends the open request, if it holds spans.
func (o *outBatch) cut() {
	if o.open.spans > 0 {
		o.cuts = append(o.cuts, outCut{len(o.buf), o.open.spans})
		o.open = outMark{len(o.buf), 0}
	}
}

// room is how many spans the open request takes before it is cut, or
// math.MaxInt without cuts.
func (o *outBatch) room() int {
	if o.maxSpans <= 0 {
		return math.MaxInt
	}
	return o.maxSpans - o.open.spans
}

// reset empties the batch.
func (o *outBatch) reset() {
	if cap(o.buf) > 8<<20 {
		o.buf = nil // do not hold on to a huge trace's buffer
	} else {
		o.buf = o.buf[:0]
	}
	o.spans, o.since = 0, -1
	o.cuts, o.open = o.cuts[:0], outMark{}
}

// next is when the batch times out, or math.MaxInt64 when it is empty.
func (o *outBatch) next() int64 {
	if o.since < 0 {
		return math.MaxInt64
	}
	return o.since + o.timeout
}

// encoder is the scratch appendTrace and forwardLate encode with.
type encoder struct {
	order []uint32
	seen  map[seenKey][]byte // the first span with an ID in a group
	// more holds the other spans with an ID in a group, by the hash of
	// their bytes: a client bug (two different spans given one ID). Made
	// at the first such span; a trace without one neither hashes nor
	// looks it up.
	more    map[seenMore][]byte
	spanBuf []byte
	ends    []int
}

// seenKey is a span ID in a group (resource and scope) of a trace.
type seenKey struct {
	gid uint32
	id  [8]byte
}

// seenMore is a span ID in a group and the xxhash of a span's bytes.
type seenMore struct {
	seenKey
	sum uint64
}

// seenOther reports whether raw, a span with key that differs from the
// first span with key (e.seen), was seen before in this trace, and notes it
// if not: each distinct span with an ID counts, so that the exact retry of
// the second of two spans that share an ID is a duplicate too. Only such
// spans come here; the others cost appendTrace one lookup in e.seen, as
// before. Two different spans whose hashes collide (2^-64) both go out,
// and the second's retries with them.
func (e *encoder) seenOther(key seenKey, raw []byte) bool {
	if e.more == nil {
		e.more = make(map[seenMore][]byte)
	}
	mk := seenMore{key, xxhash.Sum64(raw)}
	prev, ok := e.more[mk]
	if !ok {
		e.more[mk] = raw
		return false
	}
	return bytes.Equal(prev, raw)
}

// forget clears what appendTrace noted in seen and more, so as not to
// keep the records reachable.
func (e *encoder) forget() {
	clear(e.seen)
	if len(e.more) > 0 {
		clear(e.more)
	}
}

// flushOut hands the requests cut from the output batch to the next
// consumer, one by one, and the open request too when all is set or
// batching is off, and returns what the next consumer refused.
func (s *shard) flushOut(ctx context.Context, all bool) error {
	if s.inline { // an Ingest call runs the shard: its goroutine hands the batch on (tryIngest)
		return nil
	}
	o := &s.out
	if o.since < 0 {
		return nil
	}
	if ctx.Err() != nil {
		// Shutdown's time is up: count what is not delivered, as send would.
		n := o.spans
		s.deps.observer.ExportFailed(n)
		o.reset()
		return fmt.Errorf("%d kept spans not forwarded: %w", n, ctx.Err())
	}
	if all || o.timeout == 0 {
		o.cut()
	}
	// The batch's keep decisions go to the store before the batch's
	// delivery does: a keep noted after the delivery would read as not
	// delivered (the index clears the mark at a keep that follows a
	// drop), and a restart would send the trace again.
	s.flushStore()
	var d *outDelivery
	if len(o.cuts) > 0 {
		d = s.beginDelivery()
	}
	var errs []error
	from := 0
	for _, c := range o.cuts {
		req := o.buf[from:c.end]
		from = c.end
		var err error
		if s.deps.emitWire != nil {
			err = s.sendWire(ctx, req, c.spans, d)
		} else {
			var td ptrace.Traces
			td, err = s.decodeOut(req)
			if td.ResourceSpans().Len() > 0 {
				err = errors.Join(err, s.send(ctx, td, d))
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	d.finish()
	if s.lent {
		// A call given up on may still read its request, in o.buf (the
		// wire output's bytes; pdata may share them too): the batch leaves
		// those bytes to it and goes on in a buffer of its own.
		s.lent = false
		o.buf = slices.Clone(o.buf[o.open.at:])
		o.open.at = 0
	}
	if o.open.spans == 0 {
		o.reset()
		return errors.Join(errs...)
	}
	// The open request stays, at the front.
	n := copy(o.buf, o.buf[o.open.at:])
	o.buf = o.buf[:n]
	o.spans, o.since = o.open.spans, o.openedAt
	o.cuts, o.open = o.cuts[:0], outMark{0, o.open.spans}
	return errors.Join(errs...)
}

// flushOutAsync is flushOut where no caller waits for the outcome.
func (s *shard) flushOutAsync(ctx context.Context, all bool) {
	if err := s.flushOut(ctx, all); err != nil {
		s.deps.logger.Error("Kept spans not forwarded", zap.Error(err))
	}
}

// decodeOut decodes requests of the output batch. The fast path buffers
// spans it has only scanned, so a span pdata refuses can reach here; it then
// decodes them one ResourceSpans at a time, so that such a span costs only
// its own group of its trace, and returns the rest with an error for the
// loss.
func (s *shard) decodeOut(buf []byte) (ptrace.Traces, error) {
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(buf)
	if err == nil {
		return td, nil
	}
	td = ptrace.NewTraces()
	var lost int
	var first error
	wire.ForEachResourceSpans(buf, func(rs []byte, spans int) {
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
		s.deps.observer.ExportFailed(lost)
		return td, fmt.Errorf("%d kept spans not decodable: %w", lost, first)
	}
	return td, nil
}

// build decodes a trace's spans into pdata (see appendTrace).
func (s *shard) build(t *trace, m *sampling.Marker) (ptrace.Traces, error) {
	var o outBatch
	s.appendTrace(&o, t, m, nil, 0)
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(o.buf)
	if err != nil {
		return td, fmt.Errorf("decode trace: %w", err)
	}
	return td, nil
}

// appendTrace appends a trace's spans to o, grouped under their resource and
// scope, with each span's tracestate marked, and returns how many duplicates
// it left out. A duplicate (a client's retry) is a span with the same ID and
// bytes as any one before it under the same resource and scope; spans that share
// an ID under different resources (B3/Zipkin shared spans: client and
// server) or differ in content all go out. A nil m leaves tracestates as
// they arrived; attrs, encoded attributes, are set on the spans
// output.annotate_roots or annotate_spans names (annotate.wants).
func (s *shard) appendTrace(o *outBatch, t *trace, m *sampling.Marker, attrs []byte, now int64) (dups int) {
	e := &s.enc
	e.order = e.order[:0]
	t.forEachRecord(func(gid uint32, _ []byte) {
		for _, g := range e.order {
			if g == gid {
				return
			}
		}
		e.order = append(e.order, gid)
	})
	o.buf = slices.Grow(o.buf, t.recordBytes()+len(e.order)*512)
	for _, g := range e.order {
		e.spanBuf, e.ends = e.spanBuf[:0], e.ends[:0]
		t.forEachRecord(func(gid uint32, raw []byte) {
			if gid != g {
				return
			}
			id, ts := wire.PeekSpan(raw)
			key := seenKey{gid, id}
			if first, ok := e.seen[key]; !ok {
				e.seen[key] = raw
			} else if bytes.Equal(first, raw) || e.seenOther(key, raw) {
				dups++
				return
			}
			mark := string(ts)
			if m != nil {
				mark = m.Mark(ts)
			}
			if len(attrs) > 0 && s.annotate.wants(raw) {
				e.spanBuf = wire.AppendSpanAttrs(e.spanBuf, raw, mark, attrs)
			} else {
				e.spanBuf = wire.AppendSpan(e.spanBuf, raw, mark)
			}
			e.ends = append(e.ends, len(e.spanBuf))
		})
		o.appendSpans(&s.usage.groups.groups[g].sc, e.spanBuf, e.ends, now)
	}
	e.forget()
	return dups
}

// forwardLate sends the late spans of kept traces in s.msg.late at once,
// each marked as its trace was (threshold, and a derived rv) and annotated
// as its trace's spans were (a late root too), in the output batch, one
// ResourceSpans per scope they arrived under. It sorts them by scope
// (stably, keeping their order within a scope) to visit each once: a
// request of many scopes and many late spans costs n log n, not scopes × n.
func (s *shard) forwardLate(ctx context.Context, batch *wire.Batch, now int64) {
	e := &s.enc
	late := s.msg.late
	scopeOf := func(l lateSpan) int32 { return batch.Spans[l.idx].Scope }
	byScope := func(a, b lateSpan) int { return cmp.Compare(scopeOf(a), scopeOf(b)) }
	if !slices.IsSortedFunc(late, byScope) {
		slices.SortStableFunc(late, byScope)
	}
	// Most late spans share a mark: the marker is made again only when it
	// changes.
	var marker sampling.Marker
	var markerOf keptMark
	var attrs []byte
	hasMarker := false
	for len(late) > 0 {
		scope := scopeOf(late[0])
		e.spanBuf, e.ends = e.spanBuf[:0], e.ends[:0]
		n := 0
		for ; n < len(late) && scopeOf(late[n]) == scope; n++ {
			sp := &batch.Spans[late[n].idx]
			if mark := late[n].mark; !hasMarker || mark != markerOf {
				marker, markerOf, hasMarker = mark.marker(), mark, true
				attrs = s.annotate.lateAttrs(mark)
			}
			if len(attrs) > 0 && s.annotate.wants(sp.Raw) {
				e.spanBuf = wire.AppendSpanAttrs(e.spanBuf, sp.Raw, marker.Mark(sp.TraceState), attrs)
			} else {
				e.spanBuf = wire.AppendSpan(e.spanBuf, sp.Raw, marker.Mark(sp.TraceState))
			}
			e.ends = append(e.ends, len(e.spanBuf))
			if len(e.ends) >= s.out.room() { // a late span is a request's unit
				s.out.appendSpans(&batch.Scopes[scope], e.spanBuf, e.ends, now)
				s.out.cut()
				e.spanBuf, e.ends = e.spanBuf[:0], e.ends[:0]
			}
		}
		s.out.appendSpans(&batch.Scopes[scope], e.spanBuf, e.ends, now)
		late = late[n:]
	}
	s.deps.observer.Late(true, len(s.msg.late))
	if s.out.due() {
		s.flushOutAsync(ctx, false)
	}
}

// send hands td to the next consumer, retrying retryable errors with
// backoff until ctx ends, and notes in d (nil without a store) whether its
// traces were delivered. What is not delivered is counted and returned.
func (s *shard) send(ctx context.Context, td ptrace.Traces, d *outDelivery) error {
	err := s.deliver(ctx, td.SpanCount(), func() error { return s.deps.emit(ctx, td) })
	if d != nil {
		d.handed(traceIDs(td), err)
	}
	return err
}

// deliver calls call, which hands spans spans on, retrying retryable errors
// with backoff until ctx ends. What is not delivered is counted and
// returned.
func (s *shard) deliver(ctx context.Context, spans int, call func() error) error {
	err := retryRetryable(ctx, call, s.caller.call)
	if err != nil {
		s.deps.observer.ExportFailed(spans)
	}
	if errors.Is(err, ErrAbandoned) {
		s.lent = true // the call may still read the output batch (flushOut)
		return fmt.Errorf("%d kept spans not handed on: %w", spans, err)
	}
	return err
}
