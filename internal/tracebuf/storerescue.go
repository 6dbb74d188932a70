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
	unsent []unsentRescue
}

// unsentRescue is a rescued trace not yet sent, with what its catch-up
// needs.
type unsentRescue struct {
	id     [16]byte
	td     ptrace.Traces
	policy string
	mark   keptMark
	rule   string
	sent   map[[8]byte][]byte
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

// sendRetrying hands td to the next consumer as the shards do
// (shard.deliver), for the traces the rescuer and KeepStored send outside
// them: retryable refusals are retried until ctx ends.
func (b *Buffer) sendRetrying(ctx context.Context, td ptrace.Traces) error {
	return retryRetryable(ctx, func() error { return b.emit(ctx, td) }, CallWithin)
}

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

// storedTrace reads trace id from the store once what the store has been
// given so far is written: the requests that brought the late spans,
// recorded as they were accepted, and the trace's decision may still be on
// their way (Queued does not count a record the writer has taken).
func (r *rescuer) storedTrace(ctx context.Context, id [16]byte) (store.Trace, error) {
	st := r.b.store.st
	sctx, cancel := context.WithTimeout(ctx, syncWait)
	err := st.Sync(sctx)
	cancel()
	if err != nil {
		r.b.set.Logger.Debug("Store not synced before a rescue read", zap.Error(err))
	}
	return st.Trace(id)
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
	tr, err := r.storedTrace(ctx, l.id)
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
	return r.redecide(ctx, l.id, all, sum)
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
// The trace's shard then learns of the keep, so that its later spans
// follow it; the spans the shard let go before that are in the store, and
// go on too (catchUp).
func (r *rescuer) redecide(ctx context.Context, id [16]byte, req []byte, sum *sampling.Trace) error {
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
	sent := make(map[[8]byte][]byte)
	td, _, err := markStoredExcept(req, rescued.marker(), rule, b.cfg.Output.AnnotateSpans, sent)
	if err != nil {
		return err
	}
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
	b.store.st.AppendDecision(id, store.Decision{Keep: true, Threshold: d.Threshold.Unsigned(), Policy: d.Policy, Reason: ReasonLateSpan})
	h := hashID(&id)
	if !r.final {
		b.kept.Set(h, keptValue{check: idCheck(&id), mark: rescued})
	}
	// A retryable refusal is retried, as the shards retry theirs: sent
	// once, a rescued trace that the next consumer refused for a moment
	// was lost, and its later late spans marked it delivered.
	if err := b.sendRetrying(ctx, td); err != nil {
		if !r.final && b.closing.Err() != nil && !consumererror.IsPermanent(err) {
			r.unsent = append(r.unsent, unsentRescue{id: id, td: td, policy: d.Policy, mark: rescued, rule: rule, sent: sent})
			return nil
		}
		b.set.Observer.ExportFailed(td.SpanCount())
		return fmt.Errorf("send rescued trace: %w", err)
	}
	b.set.Observer.Rescued(d.Policy)
	if !r.final {
		// The kept cache may refuse or delay the entry: the shard's own
		// record of its kept traces does not.
		sctx, cancel := context.WithTimeout(ctx, syncWait)
		_ = b.inShard(sctx, b.shardOf(&id), func(_ context.Context, s *shard) { s.decided.rememberKept(id, h, rescued) })
		cancel()
	}
	return r.catchUp(ctx, id, rescued, rule, sent)
}

// sendUnsent sends a rescued trace the shutdown cut short, and its late
// spans, within ctx.
func (r *rescuer) sendUnsent(ctx context.Context, u unsentRescue) {
	b := r.b
	if err := b.sendRetrying(ctx, u.td); err != nil {
		b.set.Observer.ExportFailed(u.td.SpanCount())
		b.set.Logger.Warn("Rescued trace not sent before the shutdown deadline", zap.Error(err))
		return
	}
	b.set.Observer.Rescued(u.policy)
	if err := r.catchUp(ctx, u.id, u.mark, u.rule, u.sent); err != nil {
		b.set.Logger.Warn("Late spans of a rescued trace not sent", zap.Error(err))
	}
}

// catchUp sends on the spans of kept trace id that the store holds and
// that are not in sent: those that came after the rescue read and before
// the trace's shard learnt of the keep.
func (r *rescuer) catchUp(ctx context.Context, id [16]byte, m keptMark, rule string, sent map[[8]byte][]byte) error {
	b := r.b
	tr, err := r.storedTrace(ctx, id)
	if err != nil {
		return fmt.Errorf("read rescued trace from store: %w", err)
	}
	td, n, err := markStoredExcept(tr.Request, m.marker(), rule, b.cfg.Output.AnnotateSpans, sent)
	if err != nil || n == 0 {
		return err
	}
	if err := b.sendRetrying(ctx, td); err != nil {
		b.set.Observer.ExportFailed(n)
		return fmt.Errorf("send late spans of rescued trace: %w", err)
	}
	return nil
}
