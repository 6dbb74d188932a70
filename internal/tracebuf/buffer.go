// Package tracebuf is tailsift's trace-ID-sharded buffer: it takes encoded
// OTLP trace requests, holds each trace's spans as wire bytes until a
// completion rule fires, asks the sampling engine, and hands kept traces to
// the next consumer. The tailsift processor and receiver both run on it.
package tracebuf

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// shardQueueLen bounds each shard's queue in messages; MaxQueuedBytes bounds
// it in bytes.
const shardQueueLen = 1024

// Emit hands kept spans to the next consumer. A call that outlives its
// context by AbandonGrace is given up on and left running (CallWithin).
type Emit func(ctx context.Context, td ptrace.Traces) error

// Settings are what a Buffer runs with besides its Config.
type Settings struct {
	Logger   *zap.Logger
	Observer Observer
	Clock    clock.Clock
	// Accepted, when not nil, is called with the scan of every request
	// the buffer takes (before sampling), from the Ingest call's
	// goroutine; it must not keep the batch. It is not called for spans
	// taken in again: by Replay, or by IngestAgain.
	Accepted func(*wire.Batch)
}

// Buffer is the sharded trace buffer. Create it with New, then Start it.
type Buffer struct {
	cfg    Config
	engine *sampling.Engine
	emit   Emit
	set    Settings
	base   time.Time

	shards []*shard
	kept   *keptCache

	queued    *semaphore.Weighted
	queuedMax int64
	// room holds, per shard, the messages its queue can still take: a
	// slot is reserved before a message is sent, and given back when the
	// shard takes the message off its queue (taken), so that a request
	// reserves room in all its shards before it sends anything.
	room []*semaphore.Weighted
	reqs sync.Pool

	// mu guards started and closed, and inflight against Shutdown's Wait;
	// it is never held while waiting for anything.
	mu       sync.RWMutex
	started  bool
	closed   bool
	inflight sync.WaitGroup // Ingest and Sync calls past their check
	// closing ends when Shutdown begins, so that calls waiting for queue
	// room give up at once instead of holding Shutdown back.
	closing    context.Context
	closeCalls context.CancelFunc
	cancel     context.CancelFunc // stops the shards
	done       sync.WaitGroup
	errs       []error // each shard's final flush, set before done

	store *storeHook // nil without storage (store.go)
}

// New builds a buffer for a validated config.
func New(cfg Config, emit Emit, set Settings) (*Buffer, error) {
	engine, err := sampling.NewEngine(cfg.enginePolicies(), sampling.WithBudget(cfg.Budget), sampling.WithFirstMatch(cfg.SampleOnFirstMatch),
		sampling.WithRootSpanCondition(cfg.RootSpanCondition), sampling.WithRules(cfg.Rules))
	if err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	if set.Observer == nil {
		set.Observer = NopObserver{}
	}
	if set.Clock == nil {
		set.Clock = clock.Real{}
	}
	n := cfg.Shards
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	kept := newKeptCache(int64(cfg.DecisionCache.KeptMaxBytes) * 3 / 4)
	b := &Buffer{
		cfg:       cfg,
		engine:    engine,
		emit:      emit,
		set:       set,
		base:      set.Clock.Now(),
		kept:      kept,
		queuedMax: int64(cfg.Buffer.MaxQueuedBytes),
		queued:    semaphore.NewWeighted(int64(cfg.Buffer.MaxQueuedBytes)),
		errs:      make([]error, n),
	}
	b.closing, b.closeCalls = context.WithCancel(context.Background())
	for i := range n {
		b.shards = append(b.shards, newShard(b.shardDeps(), shardConfigFor(cfg, n), i))
		b.room = append(b.room, semaphore.NewWeighted(shardQueueLen))
	}
	// The scan leaves out the spans with bad IDs, which are refused.
	b.reqs.New = func() any { return &request{b: b, per: make([][]int32, n), batch: wire.Batch{SkipInvalid: true}} }
	return b, nil
}

// Engine returns the buffer's sampling engine.
func (b *Buffer) Engine() *sampling.Engine { return b.engine }

// Start starts the shard goroutines.
func (b *Buffer) Start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.closed {
		return
	}
	b.started = true
	memLimit.add(b.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	for _, s := range b.shards {
		s.makeTimer()
	}
	for i, s := range b.shards {
		b.done.Go(func() { b.errs[i] = s.run(ctx) })
	}
}

// enter admits an Ingest or Sync call unless the buffer is not started or
// is shutting down; the call must end with b.inflight.Done.
func (b *Buffer) enter() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.closed {
		return false
	}
	b.inflight.Add(1)
	return true
}

// enterWaiting is enter for a call that waits on the shards: its context
// also ends when Shutdown begins, and leave, which the caller defers, ends
// the call. ok is false once the buffer is closed (nothing to leave then).
func (b *Buffer) enterWaiting(ctx context.Context) (_ context.Context, leave func(), ok bool) {
	if !b.enter() {
		return ctx, nil, false
	}
	ctx, cancel := b.untilClosing(ctx)
	return ctx, func() {
		cancel()
		b.inflight.Done()
	}, true
}

// MaxQueued is buffer.max_queued_bytes: no request weighing more
// (QueueWeight) is taken in, except spans taken in again.
func (b *Buffer) MaxQueued() int64 { return b.queuedMax }

// taken gives back the queue slot of a message its shard has taken off
// its queue.
func (b *Buffer) taken(shard int) { b.room[shard].Release(1) }

// Ingest takes an encoded TracesData or ExportTraceServiceRequest. The
// buffer owns buf from then on. It returns nil, or one of the typed errors
// of errors.go:
//   - *InvalidError: buf is not OTLP (nothing taken), or some spans have an
//     all-zero or missing trace ID or span ID (those dropped, the rest taken);
//   - *RefusedError: no room before ctx ended (retryable); nothing taken,
//     or, of a request taken in pieces, the pieces before (Taken spans);
//   - *TooLargeError: spans that each, with their resource and scope,
//     weigh more than the whole of buffer.max_queued_bytes (permanent); the
//     others of the request were taken in (Taken);
//   - ErrShutdown: the buffer is not running; nothing taken.
//
// Acceptance of the valid spans is all-or-nothing: Ingest reserves room in
// the queue of every shard the request's traces go to before it hands any of
// them on, so a refused request can be resent whole without duplicates. A
// request heavier than the whole queue is the exception: it is taken in as
// pieces within the queue, each all-or-nothing (split.go).
func (b *Buffer) Ingest(ctx context.Context, buf []byte) error {
	_, err := b.IngestCount(ctx, buf)
	return err
}

// IngestCount is Ingest that also returns the number of spans the request
// held (0 when it did not scan), for callers that report it.
func (b *Buffer) IngestCount(ctx context.Context, buf []byte) (int, error) {
	return b.IngestOwned(ctx, buf, nil)
}

// IngestOwned is IngestCount for a buf the caller takes back: done, when not
// nil, is called once the buffer reads buf no more (the shards copy what
// they keep), possibly after IngestOwned returned and from another
// goroutine. It lets a receiver hand in pooled memory without a copy.
func (b *Buffer) IngestOwned(ctx context.Context, buf []byte, done func()) (int, error) {
	return b.IngestOwnedWithin(ctx, buf, done, 0)
}

// IngestOwnedWithin is IngestOwned that waits for room in the queues at
// most wait (when > 0) besides ctx. The bound only costs a timer when the
// queues are full: a receiver that would wrap every request in
// context.WithTimeout pays about six allocations a request instead.
func (b *Buffer) IngestOwnedWithin(ctx context.Context, buf []byte, done func(), wait time.Duration) (int, error) {
	return b.ingest(ctx, buf, done, wait, true, false)
}

// IngestAgain is IngestOwned for spans that a gateway of the tier took in
// once already: traces another gateway handed over, or that a handover
// failed to send and gives back. The Accepted hook is not called for
// them (RED counted them where they first came), as for the spans Replay
// takes in again.
func (b *Buffer) IngestAgain(ctx context.Context, buf []byte, done func()) (int, error) {
	return b.ingest(ctx, buf, done, 0, false, true)
}

// IngestForwarded is IngestOwned for spans another gateway of the tier
// forwarded here (their owner): it acknowledged them to its client, and
// takes a refusal of them as permanent, so they are not refused for their
// weight (TooLargeError), as IngestAgain's are not. The Accepted hook is
// called for them: the forwarder did not count them.
func (b *Buffer) IngestForwarded(ctx context.Context, buf []byte, done func()) (int, error) {
	return b.ingest(ctx, buf, done, 0, true, true)
}

// ingest is IngestOwnedWithin; accepted says whether the Accepted hook is
// called for the spans taken, and again whether they were acknowledged
// once already (never refused for their weight: Buffer.reserve).
func (b *Buffer) ingest(ctx context.Context, buf []byte, done func(), wait time.Duration, accepted, again bool) (int, error) {
	req := b.reqs.Get().(*request)
	req.buf, req.done = buf, done
	// Scanning and routing touch nothing shared, so they run before the
	// call is admitted: a slow scan never holds Shutdown back.
	if err := wire.Scan(buf, &req.batch); err != nil {
		req.drop()
		return 0, &InvalidError{Err: err}
	}
	spans := len(req.batch.Spans) + req.batch.Invalid
	invalid, targets := b.route(req)
	invalid += req.batch.Invalid
	if !b.enter() {
		req.drop()
		return spans, ErrShutdown
	}
	defer b.inflight.Done()
	if targets > 0 {
		if err := b.reserve(ctx, req, wait, again || b.replaying()); err != nil {
			if _, ok := errors.AsType[*tooLarge](err); ok {
				// Heavier than the whole queue: taken in as pieces
				// within it (split.go), which consume req.
				return spans, b.ingestPieces(ctx, req, wait, accepted, invalid)
			}
			// The invalid spans are not counted here: the retry will be.
			b.set.Observer.Refused(RefusedQueueFull, spans-invalid)
			req.drop()
			return spans, &RefusedError{Spans: spans - invalid, Cause: err}
		}
		b.admit(req, targets, accepted)
		b.set.Observer.Received(spans - invalid)
	} else {
		req.drop()
	}
	if invalid > 0 {
		b.set.Observer.Refused(RefusedInvalid, invalid)
		return spans, InvalidIDs(invalid, spans)
	}
	return spans, nil
}

// admit hands on a request reserve admitted, whose spans go to targets
// shards: req is the shards' from then on (the last to finish with it
// recycles it).
func (b *Buffer) admit(req *request, targets int, accepted bool) {
	b.recordSpans(req)
	if accepted && b.set.Accepted != nil && !b.replaying() {
		// Spans taken in again from the store were counted when they
		// first came (RED counted them twice after a restart).
		b.set.Accepted(&req.batch)
	}
	// One reference per target shard, plus Ingest's own while it walks
	// per, which the shards recycle when done.
	req.pending.Store(int32(targets) + 1)
	b.handOn(req)
	req.release()
}

// Sync waits until every shard has taken in all that was queued before it
// and has decided the traces that are due by the clock. Tests use it with a
// fake clock instead of sleeping.
func (b *Buffer) Sync(ctx context.Context) error {
	ctx, leave, ok := b.enterWaiting(ctx)
	if !ok {
		return ErrShutdown
	}
	defer leave()
	for i, s := range b.shards {
		if err := b.room[i].Acquire(ctx, 1); err != nil {
			return b.gaveUp(ctx)
		}
		done := make(chan struct{})
		s.post(message{sync: done})
		select {
		case <-done:
		case <-ctx.Done():
			return b.gaveUp(ctx)
		}
	}
	return nil
}

// Shutdown stops taking spans, decides every buffered trace and hands the
// kept ones to the next consumer, within ctx and output.shutdown_timeout,
// whichever ends first. Kept spans not delivered by then are counted
// (Observer.ExportFailed) and dropped. It returns once the shards have
// stopped: the next consumer is not called after it returns, but a call
// that ignores its context and has not returned AbandonGrace (100 ms) past
// the deadline is given up on and left running (CallWithin). It returns
// what the next consumer refused, and is safe to call more than once.
func (b *Buffer) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()
	b.closeCalls() // calls waiting for room give up now
	if !started {
		return nil
	}
	// Calls under way end promptly: they wait only for room, and gave up.
	b.inflight.Wait()
	defer memLimit.remove(b.cfg)

	if d := b.cfg.Output.ShutdownTimeout; d > 0 { // 0 only in a Config never validated
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	// When the time is up the shards stop, even mid-retry: each decides
	// what it holds and counts the kept spans as not delivered.
	stop := context.AfterFunc(ctx, b.cancel)
	for i, s := range b.shards {
		if b.room[i].Acquire(ctx, 1) != nil {
			break // the shards stop on their own now
		}
		s.post(message{flush: &flush{ctx: ctx}})
	}
	b.done.Wait()
	errs := b.errs
	if err := b.engine.SaveState(); err != nil { // adaptive's state_file
		errs = append(errs, err)
	}
	if !stop() { // the shards were stopped: what they held is counted
		errs = append(errs, fmt.Errorf("not done within output.shutdown_timeout or the deadline: %w", ctx.Err()))
	}
	b.cancel()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tailsift: shutdown: %w", err)
	}
	return nil
}
