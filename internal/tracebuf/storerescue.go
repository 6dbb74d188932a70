package tracebuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// Late errors from the store: a late span of a dropped trace is handed to
// the rescuer goroutine, which reads the trace back from the store. When the
// span brings the trace's first ERROR status, or lengthens it, the policies
// decide again on the whole trace, and a keep sends it on whole, late span
// included. This replaces rescue.window's in-memory hold: nothing is held
// in memory but a small queue, and a trace can be rescued as long as the
// store keeps it.

// rescueQueue bounds the late spans waiting for the rescuer; beyond it they
// stay dropped.
const rescueQueue = 4096

// statusError is OTLP's STATUS_CODE_ERROR.
const statusError = 2

// lateReq is one late span of a dropped trace, as a ResourceSpans.
type lateReq struct {
	id     [16]byte
	spanID [8]byte
	rs     []byte
}

// extent is what the rescuer last saw of a trace, so that a late span that
// changes nothing costs no read.
type extent struct {
	start, end uint64
	hasError   bool
}

type rescuer struct {
	b    *Buffer
	in   chan lateReq
	seen map[[16]byte]extent
	stop chan struct{}
	done chan struct{}
}

func newRescuer(b *Buffer) *rescuer {
	r := &rescuer{
		b: b, in: make(chan lateReq, rescueQueue), seen: make(map[[16]byte]extent),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// CloseStore stops the buffer's use of its store (the rescuer goroutine).
// Call it after Shutdown; it is safe to call twice, or without a store.
func (b *Buffer) CloseStore() {
	if h := b.store; h != nil && h.rescue != nil {
		close(h.rescue.stop)
		<-h.rescue.done
		h.rescue = nil
	}
}

// droppedRecent is how many recently dropped traces a shard remembers the
// extent of.
const droppedRecent = 16384

// droppedExtents is a shard's memory of its recently dropped traces'
// extents (a ring), so that a late span that brings no error and does not
// lengthen its trace is let go at once, without a copy or a read.
type droppedExtents struct {
	byID map[[16]byte]extent
	ring [][16]byte
	next int
}

// remember notes the extent of a trace the shard dropped.
func (d *droppedExtents) remember(id [16]byte, e extent) {
	if d.byID == nil {
		d.byID = make(map[[16]byte]extent, droppedRecent)
		d.ring = make([][16]byte, droppedRecent)
	}
	if old := d.ring[d.next]; old != ([16]byte{}) {
		delete(d.byID, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % droppedRecent
	d.byID[id] = e
}

// changes reports whether sp could change the decision on its trace: it
// brings the first error, or lengthens the trace, or the trace is not
// remembered. It widens the remembered extent to sp.
func (d *droppedExtents) changes(sp *wire.Span) bool {
	e, ok := d.byID[sp.TraceID]
	if !ok {
		return true
	}
	newError := sp.Status == statusError && !e.hasError
	longer := sp.Start < e.start || sp.End > e.end
	if !newError && !longer {
		return false
	}
	e.hasError = e.hasError || sp.Status == statusError
	e.start, e.end = min(e.start, sp.Start), max(e.end, sp.End)
	d.byID[sp.TraceID] = e
	return true
}

// rememberDropped notes the extent of a trace the shard dropped.
func (s *shard) rememberDropped(t *trace) {
	if h := s.deps.store; h != nil {
		h.extents[s.id].remember(t.sum.ID, extent{
			start: t.sum.Start, end: t.sum.End, hasError: t.sum.StatusMask&sampling.StatusErrorBit != 0,
		})
	}
}

// lateDropped offers a late span of a dropped trace to the rescuer, when
// the buffer has a store and the span could change the decision. It never
// blocks.
func (s *shard) lateDropped(batch *wire.Batch, sp *wire.Span) {
	h := s.deps.store
	if h == nil || h.rescue == nil || !h.extents[s.id].changes(sp) {
		return
	}
	e := &s.enc
	e.spanBuf = append(e.spanBuf[:0], sp.Raw...)
	e.ends = append(e.ends[:0], len(e.spanBuf))
	rs := wire.AppendResourceSpans(nil, &batch.Scopes[sp.Scope], e.spanBuf, e.ends)
	select {
	case h.rescue.in <- lateReq{id: sp.TraceID, spanID: sp.SpanID, rs: rs}:
	default:
	}
}

func (r *rescuer) run() {
	defer close(r.done)
	for {
		select {
		case l := <-r.in:
			if err := r.rescue(l); err != nil {
				r.b.set.Logger.Warn("Late span of a dropped trace not rescued", zap.Error(err))
			}
		case <-r.stop:
			return
		}
	}
}

// rescue decides again on l's trace with l's span, if the span brings an
// error or lengthens the trace, and sends the trace on if kept now.
func (r *rescuer) rescue(l lateReq) error {
	if len(r.seen) > 100_000 {
		clear(r.seen)
	}
	var late wire.Batch
	if err := wire.Scan(l.rs, &late); err != nil || len(late.Spans) != 1 {
		return nil //nolint:nilerr // the shard scanned it: cannot happen
	}
	sp := &late.Spans[0]
	if ext, ok := r.seen[l.id]; ok && (sp.Status != statusError || ext.hasError) &&
		sp.Start >= ext.start && sp.End <= ext.end {
		return nil
	}
	st := r.b.store.st
	tr, err := st.Trace(l.id)
	if (err == nil && !tr.Decided) || (errors.Is(err, store.ErrNotFound) && st.Queued() > 0) {
		// The decision, or the trace's spans, may still be on their way
		// to the store.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = st.Sync(ctx)
		cancel()
		if err == nil {
			tr, err = st.Trace(l.id)
		}
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!tr.Decided || tr.Decision.Keep)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read trace from store: %w", err)
	}
	tr.Request = append(tr.Request, l.rs...)
	all := tr.Request
	sum, ext, changed, err := r.summarize(all, l.spanID)
	r.seen[l.id] = ext
	if err != nil || !changed {
		return err
	}
	return r.redecide(l.id, all, sum)
}

// summarize builds the summary of the trace in req, the spans with ID late
// last, and reports whether they brought its first error or lengthened it.
func (r *rescuer) summarize(req []byte, late [8]byte) (*sampling.Trace, extent, bool, error) {
	var batch wire.Batch
	if err := wire.Scan(req, &batch); err != nil {
		return nil, extent{}, false, fmt.Errorf("scan stored trace: %w", err)
	}
	sum := &sampling.Trace{}
	hasRoot := false
	eng := r.b.engine
	add := func(sp *wire.Span) {
		hasRoot = AddSpan(sum, hasRoot, sp)
		if eng.NeedsView() {
			v := SpanView(sp, &batch.Scopes[sp.Scope])
			eng.ObserveSpan(sum, &v)
		}
	}
	for i := range batch.Spans {
		if sp := &batch.Spans[i]; sp.SpanID != late {
			add(sp)
		}
	}
	hadError := sum.StatusMask&sampling.StatusErrorBit != 0
	before := sum.Duration()
	for i := range batch.Spans {
		if sp := &batch.Spans[i]; sp.SpanID == late {
			add(sp)
		}
	}
	ext := extent{hasError: sum.StatusMask&sampling.StatusErrorBit != 0}
	for i := range batch.Spans {
		sp := &batch.Spans[i]
		if ext.start == 0 || sp.Start < ext.start {
			ext.start = sp.Start
		}
		ext.end = max(ext.end, sp.End)
	}
	changed := (!hadError && ext.hasError) || sum.Duration() > before
	return sum, ext, changed, nil
}

// redecide runs the policies on the trace again and sends it on if kept.
func (r *rescuer) redecide(id [16]byte, req []byte, sum *sampling.Trace) error {
	b := r.b
	eng := b.engine
	sum.Now = b.set.Clock.Now().UnixNano()
	if eng.NeedsSpans() {
		var u ptrace.ProtoUnmarshaler
		if td, err := u.UnmarshalTraces(req); err == nil {
			sum.Spans, sum.HasSpans = td, true
		}
	}
	d := eng.Redecide(sum)
	sum.Spans, sum.HasSpans = ptrace.Traces{}, false
	if !d.Keep() {
		return nil
	}
	rule := ""
	if b.cfg.Output.AnnotateRoots || b.cfg.Output.AnnotateSpans {
		rule = d.Policy
	}
	rescued := supplementMark(d.Threshold, sampling.SupplementRescue)
	td, _, err := markStored(req, rescued.marker(), rule, b.cfg.Output.AnnotateSpans)
	if err != nil {
		return err
	}
	if !b.enter() {
		return ErrShutdown
	}
	defer b.inflight.Done()
	b.store.st.AppendDecision(id, store.Decision{Keep: true, Threshold: d.Threshold.Unsigned(), Policy: d.Policy, Reason: "late_span"})
	b.kept.Set(hashID(&id), keptValue{check: idCheck(&id), mark: rescued})
	if err := b.emit(context.Background(), td); err != nil {
		b.set.Observer.ExportFailed(td.SpanCount())
		return fmt.Errorf("send rescued trace: %w", err)
	}
	b.set.Observer.Rescued(d.Policy)
	return nil
}

// markStored decodes a stored trace's request for the next consumer: each
// span once (a span with the same ID and bytes as an earlier one is a
// duplicate), its tracestate marked by m, and, when rule is set,
// sampling.rule=rule on its root spans (on all its spans when all is set),
// in place of one they have. It returns the spans it holds.
func markStored(req []byte, m sampling.Marker, rule string, all bool) (ptrace.Traces, int, error) {
	var batch wire.Batch
	if err := wire.Scan(req, &batch); err != nil {
		return ptrace.Traces{}, 0, fmt.Errorf("scan stored trace: %w", err)
	}
	var attr []byte
	if rule != "" {
		attr = wire.AppendStringAttr(nil, "sampling.rule", rule)
	}
	seen := make(map[[8]byte][]byte)
	var out, spans []byte
	var ends []int
	scope := int32(-1)
	flush := func() {
		if len(ends) > 0 {
			out = wire.AppendResourceSpans(out, &batch.Scopes[scope], spans, ends)
		}
		spans, ends = spans[:0], ends[:0]
	}
	n := 0
	for i := range batch.Spans {
		sp := &batch.Spans[i]
		if first, ok := seen[sp.SpanID]; ok && bytes.Equal(first, sp.Raw) {
			continue
		}
		seen[sp.SpanID] = sp.Raw
		if sp.Scope != scope {
			flush()
			scope = sp.Scope
		}
		if len(attr) > 0 && (all || !sp.HasParent) {
			spans = wire.AppendSpanAttrs(spans, sp.Raw, m.Mark(sp.TraceState), attr)
		} else {
			spans = wire.AppendSpan(spans, sp.Raw, m.Mark(sp.TraceState))
		}
		ends = append(ends, len(spans))
		n++
	}
	flush()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(out)
	if err != nil {
		return td, 0, fmt.Errorf("decode stored trace: %w", err)
	}
	return td, n, nil
}
