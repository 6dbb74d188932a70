package tracebuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/sampling"
)

// The durable store (storage: tailsift). When a buffer is attached to a
// store, every accepted request is recorded as it is accepted, every
// decision as it is taken and every delivery to the next consumer as it is
// accepted; all asynchronously, so that ingest never waits for the disk. At
// start, the buffer resumes from what the store held: it remembers the
// recorded decisions, and takes in again the spans of the traces that were
// undecided, or kept but not delivered. Late spans of dropped traces are
// looked up in the store (storerescue.go).

// storeHook is a buffer's link to its store.
type storeHook struct {
	st *store.Store
	// replaying is set while Replay takes stored spans in again: they are
	// in the store already.
	replaying atomic.Bool
	replay    [][16]byte
	// recovery is what the store held at the last stop, claimed here;
	// Replay says when it has read it back (store.Recovery.Replayed).
	recovery *store.Recovery
	rescue   *rescuer
	detach   func() // from the extension's keepers
	// emit is the next consumer. Its callers record the delivery: a shard
	// once the call returned nil (send, sendWire), the senders of stored
	// traces in chunks (sendStored) once the last chunk went.
	emit Emit
	// pending holds each shard's decisions not yet handed to the store;
	// only shard i touches pending[i].
	pending []shardDecisions
	// extents holds each shard's recently dropped traces; only shard i
	// touches extents[i].
	extents []droppedExtents
	// sends are the traces whose stored spans a keep or a rescue hands
	// on: the shards do not record them delivered meanwhile.
	sends storedSends
	// queued holds, per shard, the requests recorded and not taken in
	// yet (storequeued.go).
	queued []queuedReqs
}

// AttachStore makes b record to st and resume from what st held at Open
// (if no other component claimed it). Call it before Start, then Replay
// after Start.
func (b *Buffer) AttachStore(st *store.Store) {
	h := &storeHook{st: st, pending: make([]shardDecisions, len(b.shards)), extents: make([]droppedExtents, len(b.shards)), emit: b.emit,
		queued: make([]queuedReqs, len(b.shards))}
	b.store = h
	h.rescue = newRescuer(b)
	for _, s := range b.shards {
		s.deps.store = h
		s.due.rescuable = true // a late ERROR span keeps a dropped trace from the store
	}
	rec := st.Claim()
	h.replay, h.recovery = rec.Undecided, rec
	// The kept traces not delivered are remembered last: the kept cache
	// holds the newest entries, and theirs must be there when Replay
	// sends their spans again. Remembered in the store's order, many
	// delivered keeps evicted them, and their replayed spans were decided
	// afresh (dropped, or counted twice downstream).
	var undelivered []*store.Decided
	for i := range rec.Decided {
		d := &rec.Decided[i]
		s := b.shards[b.shardOf(&d.ID)]
		switch {
		case !d.Decision.Keep:
			s.decided.dropped.add(hashID(&d.ID), s.now())
		case d.Delivered:
			s.decided.rememberKept(d.ID, hashID(&d.ID), restoredMark(d.Decision))
		default:
			undelivered = append(undelivered, d)
		}
	}
	for _, d := range undelivered {
		s := b.shards[b.shardOf(&d.ID)]
		s.decided.rememberKept(d.ID, hashID(&d.ID), restoredMark(d.Decision))
		// Its spans come again as late spans of a kept trace, marked with
		// its threshold.
		h.replay = append(h.replay, d.ID)
	}
}

// Replay takes in again the stored spans of the traces that were undecided
// at the last stop, or kept and not delivered. It returns how many spans it
// took in. Call it after Start, before anything else is ingested.
func (b *Buffer) Replay(ctx context.Context) (int, error) {
	h := b.store
	if h == nil {
		return 0, nil
	}
	if len(h.replay) == 0 {
		h.recovery.Replayed(0)
		return 0, nil
	}
	h.replaying.Store(true)
	defer h.replaying.Store(false)
	total := 0
	err := h.st.Requests(h.replay, func(req []byte, spans int) error {
		n, err := b.IngestCount(ctx, append([]byte(nil), req...))
		if _, invalid := errors.AsType[*InvalidError](err); err != nil && !invalid {
			return err
		}
		total += n
		return nil
	})
	h.replay = nil
	if err != nil {
		return total, fmt.Errorf("replay stored spans: %w", err)
	}
	// Read back. The traces taken in are not recorded again: their spans
	// are on disk only in the segments they came from, which the store
	// holds for a retention from now, as if they were recorded now. Held
	// only max_wait + batch_timeout, they went while the delivery of a
	// trace kept then was refused and retried (a backend not up yet after
	// an outage), and a kill -9 lost it
	// (TestKeptAfterLongDowntimeOutlivesRetries: 0 of 2 spans sent again).
	h.recovery.Replayed(max(b.cfg.Completion.MaxWait+b.cfg.Output.BatchTimeout, h.st.Retention()))
	return total, nil
}

// recordSpans records an accepted request with the IDs of its traces.
func (b *Buffer) recordSpans(req *request) {
	h := b.store
	if h == nil {
		return
	}
	if h.replaying.Load() {
		// Taken in again from the store: recorded already, in records
		// older than any delivery begun since. Noted all the same, so that
		// a shard's delivery begun once Replay is over leaves the trace out
		// until the shard has taken the request in (beginDelivery).
		h.noteQueued(req)
		return
	}
	// Sized exactly, by counting first: one allocation the store holds
	// until it is written. (Sized for one trace per 4 spans, it grew twice
	// on the benchmark workload, 100 traces in 160 spans: three
	// allocations and 4.6 KB instead of one of 1.6 KB.)
	n, first := 0, true
	var last [16]byte
	for sh := range req.per {
		for _, i := range req.per[sh] {
			if id := req.batch.Spans[i].TraceID; first || id != last {
				n, first, last = n+1, false, id
			}
		}
	}
	ids := make([][16]byte, 0, n)
	for sh := range req.per {
		for _, i := range req.per[sh] {
			id := req.batch.Spans[i].TraceID
			if n := len(ids); n == 0 || ids[n-1] != id {
				ids = append(ids, id)
			}
		}
	}
	// Noted before the record is queued: a shard's delivery that begins
	// after the record leaves the request's traces out until the shard has
	// taken it in.
	h.noteQueued(req)
	if req.done == nil {
		// The buffer owns buf and never changes it: no copy.
		h.st.AppendSpansOwned(ids, req.buf)
	} else {
		h.st.AppendSpans(ids, req.buf) // pooled memory, given back once the shards are done
	}
}

// shardDecisions are the decisions a shard took since it last handed them
// to the store: one store item per loop of the shard, not one per trace.
type shardDecisions struct {
	ids  [][16]byte
	decs []store.Decision
}

// recordDecision notes the decision d taken on t for reason, mark being
// how its spans were marked when d keeps it; flushStore hands it to the
// store. The store keeps the rv of mark, and a supplement as the reason
// that made it (restoredMark reads it back).
func (s *shard) recordDecision(t *trace, d sampling.Decision, mark keptMark, reason string) {
	if h := s.deps.store; h != nil {
		if !d.Keep() {
			s.rememberDropped(t)
		}
		p := &h.pending[s.id]
		p.ids = append(p.ids, t.sum.ID)
		p.decs = append(p.decs, storedDecision(d, mark, reason))
	}
}

// recordHandedKeep notes, for the store, the keep of trace id that another
// gateway handed over with mark while no span of the trace was buffered
// here: its late spans follow the keep here, and after a restart they must
// still (recorded as keepHandedOver records a buffered trace's). Without
// it the store held the late spans with no decision: a restart took them
// in again as an undecided trace, and the policies decided them afresh,
// sent a second time or dropped (TestHandedOverKeepSurvivesCrash).
func (s *shard) recordHandedKeep(id [16]byte, mark keptMark) {
	if h := s.deps.store; h != nil {
		d := sampling.Decision{Verdict: sampling.Sampled, Threshold: mark.threshold(), Policy: HandoverRule}
		p := &h.pending[s.id]
		p.ids = append(p.ids, id)
		p.decs = append(p.decs, storedDecision(d, mark, ReasonHandover))
	}
}

// flushStore hands the shard's noted decisions to the store.
func (s *shard) flushStore() {
	h := s.deps.store
	if h == nil {
		return
	}
	if p := &h.pending[s.id]; len(p.ids) > 0 {
		h.st.AppendDecisions(p.ids, p.decs)
		// The store holds those slices now; the next loop's likely take
		// about as many decisions, so size them once, not by doubling.
		n := len(p.ids)
		*p = shardDecisions{ids: make([][16]byte, 0, n), decs: make([]store.Decision, 0, n)}
	}
}

// traceIDs returns the distinct trace IDs of td, sorted: one slice, no
// set (an emit's spans come grouped by trace, so most repeats are adjacent).
func traceIDs(td ptrace.Traces) [][16]byte {
	var ids [][16]byte
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				if id := [16]byte(spans.At(k).TraceID()); len(ids) == 0 || ids[len(ids)-1] != id {
					ids = append(ids, id)
				}
			}
		}
	}
	return sortedIDs(ids)
}

// sortedIDs sorts ids and leaves each once.
func sortedIDs(ids [][16]byte) [][16]byte {
	slices.SortFunc(ids, compareIDs)
	return slices.Compact(ids)
}

func compareIDs(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) }

// RetroactiveRule is the sampling.rule of a trace kept through the API
// after it was dropped.
const RetroactiveRule = "retroactive"

// ErrNotDropped is returned by KeepStored for a trace that is kept already
// or not decided yet.
var ErrNotDropped = errors.New("trace is not a dropped trace")

// KeepStored sends the stored spans of dropped trace id down the pipeline
// now, marked with threshold 0 (probability 1, adjusted count 1: the trace
// stands for itself only) and sampling.rule=retroactive on its root spans,
// and records the keep. It returns the number of spans sent.
//
// The trace goes in requests of at most storedChunkBytes of stored spans
// (sendStored), each span once: it read the whole trace, decoded all of it
// and sent it in one request, which held 67 MiB of heap for a trace of
// 32 MiB (TestKeepStoredBigTraceBounded). The delivery is recorded once the
// last request went. When a request fails, the keep stays recorded and
// not delivered, and may be asked again: the requests sent before it are
// then sent again (at least once, as the store's delivery guarantee).
func (b *Buffer) KeepStored(ctx context.Context, id [16]byte) (int, error) {
	h := b.store
	if h == nil {
		return 0, errors.New("no store attached")
	}
	if !b.enter() {
		return 0, ErrShutdown
	}
	defer b.inflight.Done()
	tr, err := h.st.TraceInfo(id)
	if err != nil {
		return 0, err
	}
	// A retroactive keep whose sending failed (the caller is told) may be
	// asked again: the keep is recorded, the delivery not.
	retry := tr.Decided && tr.Decision.Keep && tr.Decision.Reason == RetroactiveRule && !tr.Delivered
	if !tr.Decided || tr.Decision.Keep && !retry {
		return 0, ErrNotDropped
	}
	retro := supplementMark(otelsampling.AlwaysSampleThreshold, sampling.SupplementRetro)
	if !retry {
		h.st.AppendDecision(id, store.Decision{Keep: true, Policy: RetroactiveRule, Reason: RetroactiveRule})
	}
	d := h.beginStored(ctx)
	h.sends.begin(id) // before the shards follow the keep
	b.kept.Set(hashID(&id), keptValue{check: idCheck(&id), mark: retro})
	// Retried while the caller waits, as the shards retry, until the
	// shutdown begins.
	ctx, cancel := b.untilClosing(ctx)
	defer cancel()
	n, err := b.sendStored(ctx, id, retro.marker(), RetroactiveRule, store.SpanSet{})
	h.sends.end(id, err == nil)
	if err != nil {
		return 0, fmt.Errorf("send kept trace: %w", err)
	}
	h.st.AppendDelivered(d, [][16]byte{id})
	return n, nil
}

// beginStored begins the delivery of spans read back from the store
// (store.BeginDelivery), then waits, at most syncWait, until what was
// queued before it is written, so that the read finds every spans record
// the delivery covers. When the store did not write them in time, it
// returns nil: the delivery is not recorded, and a restart sends the
// trace again.
func (h *storeHook) beginStored(ctx context.Context) *store.Delivery {
	d := h.st.BeginDelivery()
	sctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	if h.st.Sync(sctx) != nil {
		return nil
	}
	return d
}

// storedChunkBytes bounds the stored spans of one request that sendStored
// hands on: 1 MiB of OTLP, a few MiB once decoded into pdata, and well
// under the 4 MiB that gRPC servers take by default once marked.
const storedChunkBytes = 1 << 20

// sendStored hands the stored spans of trace id that are not in seen to
// the next consumer, in requests of at most storedChunkBytes of them, each
// marked by m and rule as markStored marks them; retryable refusals are
// retried until ctx ends. It adds the spans it sent to seen and returns
// their number; the spans of a request that failed, and of those after it,
// are not in seen. It records no delivery. It holds one request and its
// pdata, a store block's buffers and seen, whatever the trace's size.
func (b *Buffer) sendStored(ctx context.Context, id [16]byte, m sampling.Marker, rule string, seen store.SpanSet) (int, error) {
	h := b.store
	sent := 0
	_, err := h.st.TraceChunks(id, storedChunkBytes, seen, func(req []byte, _ int) error {
		td, n, err := markStored(req, m, rule, b.cfg.Output.AnnotateSpans)
		if err != nil {
			return err
		}
		if err := retryRetryable(ctx, func() error { return h.emit(ctx, td) }, CallWithin); err != nil {
			return err
		}
		sent += n
		return nil
	})
	return sent, err
}

// StartWithStorage starts the buffer. It first points the output at the
// router of output::exporter, when set (wireout.go). When the config's
// storage key names a tailsift extension, it then attaches the buffer to
// the extension's store; once started, it takes in again what the store
// held at the last stop, and registers the buffer for the retrieval API's
// keep.
func (b *Buffer) StartWithStorage(ctx context.Context, host component.Host) error {
	if err := b.startOutput(); err != nil {
		return err
	}
	id := b.cfg.Storage
	if id == nil {
		b.Start()
		return nil
	}
	ext, ok := host.GetExtensions()[*id]
	if !ok {
		return fmt.Errorf("storage: extension %q not found: configure it under extensions and list it in service::extensions", id)
	}
	sh, ok := ext.(store.Host)
	if !ok {
		return fmt.Errorf("storage: extension %q is not a tailsift extension", id)
	}
	st := sh.Store()
	if st == nil {
		return fmt.Errorf("storage: extension %q has not started", id)
	}
	// A segment is evicted once its newest record is older than the
	// retention; a trace is decided at most max_wait after its first span.
	// A shorter retention could evict an undecided trace's spans, and a
	// crash would then lose them.
	if r, w := st.Retention(), b.cfg.Completion.MaxWait; r < w {
		return fmt.Errorf("storage: extension %q keeps spans for its retention (%v), less than completion::max_wait (%v): "+
			"a crash could lose a trace still waiting for its decision; raise the extension's retention or lower completion::max_wait", id, r, w)
	}
	b.AttachStore(st)
	b.Start()
	n, err := b.Replay(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		b.set.Logger.Info("Took in the spans the store held from the last run", zap.Int("spans", n))
	}
	b.store.detach = sh.Attach(b)
	return nil
}

// replaying reports whether Replay is taking stored spans in again.
func (b *Buffer) replaying() bool {
	return b.store != nil && b.store.replaying.Load()
}

// ShutdownWithStorage is Shutdown, then releases the store.
func (b *Buffer) ShutdownWithStorage(ctx context.Context) error {
	if h := b.store; h != nil && h.detach != nil {
		h.detach()
		h.detach = nil
	}
	// One deadline for both: output.shutdown_timeout bounds the whole
	// shutdown. The rescuer gets what the buffer's shutdown left of it.
	if d := b.cfg.Output.ShutdownTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	err := b.Shutdown(ctx)
	b.closeStore(ctx) // within ctx: the rescuer deals with what is queued first
	return err
}

// StoreSync waits until what the buffer recorded so far is written to its
// store; tests use it instead of sleeping.
func (b *Buffer) StoreSync(ctx context.Context) error {
	if b.store == nil {
		return nil
	}
	return b.store.st.Sync(ctx)
}
