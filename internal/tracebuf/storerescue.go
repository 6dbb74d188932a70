package tracebuf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
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
	// stop takes the context that bounds the rescue of what is queued
	// when the rescuer is stopped.
	stop chan context.Context
	done chan struct{}
	// final is set once the buffer is shut down: the kept cache is closed
	// and the shards are stopped. later holds the late spans whose rescue
	// began as the shutdown did: they are rescued then.
	final bool
	later []lateReq
	// unsent holds the rescued traces whose sending the shutdown cut
	// short (the next consumer refused them until then): they go in
	// closeStore, first.
	unsent []*unsentRescue
}

// unsentRescue is a rescued trace being sent, with what its sending and
// its catch-up need: the rescuer keeps it when the shutdown cut the
// sending short, and sends the rest in closeStore.
type unsentRescue struct {
	id     [16]byte
	late   []byte // the late span that rescued it, as a ResourceSpans
	policy string
	mark   keptMark
	rule   string
	// sent holds the spans sent so far (by ID and bytes): 16 bytes a span,
	// not the spans.
	sent store.SpanSet
}

// errRescueLater: the shutdown began; the rescue is done in closeStore.
var errRescueLater = errors.New("rescue after the shutdown")

func newRescuer(b *Buffer) *rescuer {
	r := &rescuer{
		b: b, in: make(chan lateReq, rescueQueue), seen: make(map[[16]byte]extent),
		stop: make(chan context.Context, 1), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// CloseStore stops the buffer's use of its store (the rescuer goroutine),
// once the late spans queued for the rescuer are dealt with, within
// output.shutdown_timeout. Call it after Shutdown; it is safe to call twice,
// or without a store.
func (b *Buffer) CloseStore() { b.closeStore(context.Background()) }

// untilClosing is ctx, cancelled also when Shutdown begins.
func (b *Buffer) untilClosing(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.closing, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// closeStore is CloseStore within ctx as well.
func (b *Buffer) closeStore(ctx context.Context) {
	h := b.store
	if h == nil || h.rescue == nil {
		return
	}
	if d := b.cfg.Output.ShutdownTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	h.rescue.stop <- ctx
	<-h.rescue.done
	h.rescue = nil
}

// run rescues the late spans handed to it until stopped, then those still
// queued (the shards hand on the last ones as they stop) while the stop's
// context lasts: a late ERROR span that came before the shutdown still
// keeps its trace.
func (r *rescuer) run() {
	defer close(r.done)
	ctx := context.Background()
	for {
		select {
		case l := <-r.in:
			r.handle(ctx, l)
		case stop := <-r.stop:
			r.final = true
			for _, u := range r.unsent {
				r.sendUnsent(stop, u)
			}
			for _, l := range r.later {
				r.handle(stop, l)
			}
			for stop.Err() == nil {
				select {
				case l := <-r.in:
					r.handle(stop, l)
				default:
					return
				}
			}
			if n := len(r.in); n > 0 {
				r.b.set.Logger.Warn("Late spans of dropped traces not rescued before the shutdown deadline", zap.Int("spans", n))
			}
			return
		}
	}
}

func (r *rescuer) handle(ctx context.Context, l lateReq) {
	err := r.rescue(ctx, l)
	if errors.Is(err, errRescueLater) {
		delete(r.seen, l.id)
		r.later = append(r.later, l)
		return
	}
	if err != nil {
		r.b.set.Logger.Warn("Late span of a dropped trace not rescued", zap.Error(err))
	}
}

// syncWait bounds the rescuer's wait for the store to write what is
// queued.
const syncWait = time.Second

// storedInfo reads the decision of trace id from the store once what the
// store has been given so far is written: the requests that brought the
// late spans, recorded as they were accepted, and the trace's decision may
// still be on their way (Queued does not count a record the writer has
// taken). The rescuer reads the trace's spans in chunks after it
// (store.TraceChunks): it read the whole trace into one request, and
// decoded all of it, which held 115 MiB of heap for a trace of 32 MiB
// (TestRescueBigTraceBounded).
func (r *rescuer) storedInfo(ctx context.Context, id [16]byte) (store.Trace, error) {
	r.sync(ctx)
	return r.b.store.st.TraceInfo(id)
}

// sync waits, at most syncWait, until the store has written what it has
// been given.
func (r *rescuer) sync(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, syncWait)
	err := r.b.store.st.Sync(sctx)
	cancel()
	if err != nil {
		r.b.set.Logger.Debug("Store not synced before a rescue read", zap.Error(err))
	}
}

// rescue decides again on l's trace with l's span, if the span brings an
// error or lengthens the trace, and sends the trace on if kept now.
func (r *rescuer) rescue(ctx context.Context, l lateReq) error {
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
	tr, err := r.storedInfo(ctx, l.id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!tr.Decided || tr.Decision.Keep)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read trace from store: %w", err)
	}
	sum, ext, changed, err := r.summarize(l.id, l.rs, l.spanID)
	r.seen[l.id] = ext
	if err != nil || !changed {
		return err
	}
	return r.redecide(ctx, l, sum)
}

// summarize builds the summary of trace id from its stored spans, read a
// chunk at a time, and its late span(s) rs: the spans with ID late last.
// It reports whether they brought the trace's first error or lengthened it.
func (r *rescuer) summarize(id [16]byte, rs []byte, late [8]byte) (*sampling.Trace, extent, bool, error) {
	sum := &sampling.Trace{}
	hasRoot := false
	eng := r.b.engine
	var batch wire.Batch
	add := func(sp *wire.Span) {
		hasRoot = AddSpan(sum, hasRoot, sp)
		if eng.NeedsView() {
			v := SpanView(sp, &batch.Scopes[sp.Scope])
			eng.ObserveSpan(sum, &v)
		}
	}
	var ext extent
	extend := func(sp *wire.Span) {
		if ext.start == 0 || sp.Start < ext.start {
			ext.start = sp.Start
		}
		ext.end = max(ext.end, sp.End)
	}
	// The stored spans with ID late (a few at most) are kept aside, as
	// ResourceSpans, to come last with rs.
	var lateSpans []byte
	_, err := r.b.store.st.TraceChunks(id, storedChunkBytes, nil, func(req []byte, _ int) error {
		if err := wire.Scan(req, &batch); err != nil {
			return fmt.Errorf("scan stored trace: %w", err)
		}
		for i := range batch.Spans {
			sp := &batch.Spans[i]
			extend(sp)
			if sp.SpanID == late {
				lateSpans = wire.AppendResourceSpans(lateSpans, &batch.Scopes[sp.Scope], sp.Raw, []int{len(sp.Raw)})
				continue
			}
			add(sp)
		}
		batch.Reset()
		return nil
	})
	if err != nil {
		return nil, extent{}, false, fmt.Errorf("read trace from store: %w", err)
	}
	hadError := sum.StatusMask&sampling.StatusErrorBit != 0
	before := sum.Duration()
	if err := wire.Scan(append(lateSpans, rs...), &batch); err != nil {
		return nil, extent{}, false, fmt.Errorf("scan late spans: %w", err)
	}
	for i := range batch.Spans {
		if sp := &batch.Spans[i]; sp.SpanID == late {
			extend(sp)
			add(sp)
		}
	}
	ext.hasError = sum.StatusMask&sampling.StatusErrorBit != 0
	changed := (!hadError && ext.hasError) || sum.Duration() > before
	return sum, ext, changed, nil
}

// rescueSpansMax is the most stored bytes of a trace that a rescue decodes
// whole into pdata for the policies that read spans (OTTL conditions):
// completion.max_trace_bytes, which bounds what a shard decodes, or 16 MiB
// when that is off. A larger trace is decided without its spans, as a
// shard decides a trace it cannot decode.
func rescueSpansMax(cfg Config) int {
	if n := int(cfg.Completion.MaxTraceBytes); n > 0 {
		return n
	}
	return 16 << 20
}

// withSpans sets sum's Spans to the stored spans of trace id and its late
// span rs, when they are within rescueSpansMax.
func (r *rescuer) withSpans(sum *sampling.Trace, id [16]byte, rs []byte) {
	tr, err := r.b.store.st.TraceMax(id, rescueSpansMax(r.b.cfg))
	if err != nil || tr.Omitted > 0 {
		r.b.set.Logger.Debug("Rescued trace decided without its spans: too large for span-level policies",
			zap.Int("omitted_spans", tr.Omitted), zap.Error(err))
		return
	}
	var u ptrace.ProtoUnmarshaler
	if td, err := u.UnmarshalTraces(append(tr.Request, rs...)); err == nil {
		sum.Spans, sum.HasSpans = td, true
	}
}

// redecide runs the policies on the trace again and sends it on if kept.
// The trace's shard then learns of the keep, so that its later spans
// follow it; the spans the shard let go before that are in the store, and
// go on too (catchUp).
func (r *rescuer) redecide(ctx context.Context, l lateReq, sum *sampling.Trace) error {
	b := r.b
	eng := b.engine
	sum.Now = b.set.Clock.Now().UnixNano()
	if eng.NeedsSpans() {
		r.withSpans(sum, l.id, l.rs)
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
	// Until the shutdown, Shutdown waits for the rescue, which its
	// beginning cuts short; after it (final), the rescuer stops in
	// closeStore, before the component's Shutdown returns, and the next
	// consumer is there until then.
	if !r.final {
		if !b.enter() {
			return errRescueLater
		}
		defer b.inflight.Done()
		var cancel context.CancelFunc
		ctx, cancel = b.untilClosing(ctx)
		defer cancel()
	}
	b.store.st.AppendDecision(l.id, store.Decision{Keep: true, Threshold: d.Threshold.Unsigned(), Policy: d.Policy, Reason: ReasonLateSpan})
	b.store.sends.begin(l.id) // before the shards follow the keep; deliver ends it
	if !r.final {
		b.kept.Set(hashID(&l.id), keptValue{check: idCheck(&l.id), mark: rescued})
	}
	return r.deliver(ctx, &unsentRescue{id: l.id, late: l.rs, policy: d.Policy, mark: rescued, rule: rule, sent: store.SpanSet{}})
}

// deliver sends rescued trace u on: its stored spans not sent yet, in
// chunks, then its late span if the store did not hold it. A retryable
// refusal is retried, as the shards retry theirs: sent once, a rescued
// trace that the next consumer refused for a moment was lost, and its
// later late spans marked it delivered. When the shutdown cuts it short,
// the rest is sent in closeStore (sendUnsent).
func (r *rescuer) deliver(ctx context.Context, u *unsentRescue) error {
	b := r.b
	d := b.store.beginStored(ctx)
	if err := r.send(ctx, u); err != nil {
		if !r.final && b.closing.Err() != nil && !consumererror.IsPermanent(err) {
			r.unsent = append(r.unsent, u)
			return nil
		}
		b.store.sends.end(u.id, false)
		b.set.Observer.ExportFailed(r.unsentSpans(u))
		return fmt.Errorf("send rescued trace: %w", err)
	}
	b.store.st.AppendDelivered(d, [][16]byte{u.id})
	b.set.Observer.Rescued(u.policy)
	if !r.final {
		// The kept cache may refuse or delay the entry: the shard's own
		// record of its kept traces does not.
		h := hashID(&u.id)
		sctx, cancel := context.WithTimeout(ctx, syncWait)
		_ = b.inShard(sctx, b.shardOf(&u.id), func(_ context.Context, s *shard) { s.decided.rememberKept(u.id, h, u.mark) })
		cancel()
	}
	// Until what the store got in between went too, the shards leave the
	// trace out of their delivery records.
	err := r.catchUp(ctx, u)
	b.store.sends.end(u.id, err == nil)
	return err
}

// send sends the stored spans of u not in u.sent, then its late span if it
// is not among them, adding what it sent to u.sent.
func (r *rescuer) send(ctx context.Context, u *unsentRescue) error {
	b := r.b
	m := u.mark.marker()
	if _, err := b.sendStored(ctx, u.id, m, u.rule, u.sent); err != nil {
		return err
	}
	var late wire.Batch
	if err := wire.Scan(u.late, &late); err != nil || len(late.Spans) != 1 {
		return nil //nolint:nilerr // the shard scanned it: cannot happen
	}
	sp := &late.Spans[0]
	if !u.sent.Add(sp.SpanID, sp.Raw) {
		return nil // stored, and sent with the rest
	}
	td, _, err := markStored(u.late, m, u.rule, b.cfg.Output.AnnotateSpans)
	if err == nil {
		err = retryRetryable(ctx, func() error { return b.store.emit(ctx, td) }, CallWithin)
	}
	if err != nil {
		u.sent.Delete(sp.SpanID, sp.Raw)
	}
	return err
}

// unsentSpans counts the spans of u not sent, for a sending given up on.
func (r *rescuer) unsentSpans(u *unsentRescue) int {
	n, _ := r.b.store.st.TraceChunks(u.id, storedChunkBytes, u.sent, func([]byte, int) error { return nil })
	var late wire.Batch
	if wire.Scan(u.late, &late) == nil && len(late.Spans) == 1 && u.sent.Add(late.Spans[0].SpanID, late.Spans[0].Raw) {
		n++
	}
	return n
}

// sendUnsent sends the rest of a rescued trace the shutdown cut short, and
// its late spans, within ctx.
func (r *rescuer) sendUnsent(ctx context.Context, u *unsentRescue) {
	if err := r.deliver(ctx, u); err != nil {
		r.b.set.Logger.Warn("Rescued trace not sent before the shutdown deadline", zap.Error(err))
	}
}

// catchUp sends on the spans of kept trace u that the store holds and
// that are not in u.sent: those that came after the rescue read and before
// the trace's shard learnt of the keep.
func (r *rescuer) catchUp(ctx context.Context, u *unsentRescue) error {
	b := r.b
	d := b.store.beginStored(ctx)
	n, err := b.sendStored(ctx, u.id, u.mark.marker(), u.rule, u.sent)
	if err != nil {
		b.set.Observer.ExportFailed(r.unsentSpans(u))
		return fmt.Errorf("send late spans of rescued trace: %w", err)
	}
	if n > 0 {
		b.store.st.AppendDelivered(d, [][16]byte{u.id})
	}
	return nil
}
