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
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// shardQueueLen bounds each shard's queue in messages; MaxQueuedBytes bounds
// it in bytes.
const shardQueueLen = 1024

// Emit hands kept spans to the next consumer.
type Emit func(ctx context.Context, td ptrace.Traces) error

// Settings are what a Buffer runs with besides its Config.
type Settings struct {
	Logger   *zap.Logger
	Observer Observer
	Clock    clock.Clock
}

// ErrShutdown is returned by Ingest once Shutdown has begun.
var ErrShutdown = errors.New("tailsift: shutting down")

// RejectedError reports the spans of a request that were rejected for an
// all-zero or missing trace ID or span ID; the other spans were buffered. Its
// gRPC status makes OTLP receivers answer INVALID_ARGUMENT / HTTP 400.
type RejectedError struct {
	Rejected, Total int
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("tailsift: rejected %d of %d spans: trace_id and span_id must be present and not all zero",
		e.Rejected, e.Total)
}

// GRPCStatus implements the interface grpc's status.FromError looks for.
func (e *RejectedError) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, e.Error())
}

// Buffer is the sharded trace buffer. Create it with New, then Start it.
type Buffer struct {
	cfg    Config
	engine *sampling.Engine
	emit   Emit
	set    Settings
	base   time.Time

	shards []*shard
	kept   *ristretto.Cache[uint64, keptValue]

	queued    *semaphore.Weighted
	queuedMax int64
	reqs      sync.Pool

	mu      sync.RWMutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// New builds a buffer for a validated config.
func New(cfg Config, emit Emit, set Settings) (*Buffer, error) {
	engine, err := sampling.NewEngine(cfg.Policies, sampling.WithBudget(cfg.Budget))
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
	kept, err := newKeptCache(int64(cfg.DecisionCache.KeptMaxBytes) * 3 / 4)
	if err != nil {
		return nil, fmt.Errorf("decision_cache::kept_max_bytes: %w", err)
	}
	b := &Buffer{
		cfg:       cfg,
		engine:    engine,
		emit:      emit,
		set:       set,
		base:      set.Clock.Now(),
		kept:      kept,
		queuedMax: int64(cfg.Buffer.MaxQueuedBytes),
		queued:    semaphore.NewWeighted(int64(cfg.Buffer.MaxQueuedBytes)),
	}
	// A quarter of the kept budget goes to the shards' rings, which back
	// ristretto up (about 48 bytes an entry with the map).
	ring := int(int64(cfg.DecisionCache.KeptMaxBytes) / 4 / 48 / int64(n))
	for i := range n {
		s := newShard(b, int64(cfg.Buffer.MaxBytes)/int64(n), ring, cfg.DecisionCache.DroppedMaxEntries/n, i)
		s.heldBudget = int64(cfg.Rescue.MaxBytes) / int64(n)
		b.shards = append(b.shards, s)
	}
	b.reqs.New = func() any { return &request{b: b, per: make([][]int32, n)} }
	return b, nil
}

// Engine returns the buffer's sampling engine.
func (b *Buffer) Engine() *sampling.Engine { return b.engine }

// Start starts the shard goroutines.
func (b *Buffer) Start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return
	}
	b.started = true
	memLimit.add(b.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	for _, s := range b.shards {
		b.done.Add(1)
		go func() {
			defer b.done.Done()
			s.run(ctx)
		}()
	}
}

// request is one Ingest call's buffer and scan, shared read-only by the
// shards it was routed to; the last of them to finish releases it.
type request struct {
	b       *Buffer
	buf     []byte
	batch   wire.Batch
	per     [][]int32 // span indexes, per shard
	pending atomic.Int32
	weight  int64
	done    func() // called once the buffer no longer reads buf
}

func (r *request) release() {
	if r.pending.Add(-1) != 0 {
		return
	}
	r.b.queued.Release(r.weight)
	r.weight = 0 // a pooled request that takes no queue room must release none
	for i := range r.per {
		r.per[i] = r.per[i][:0]
	}
	r.buf = nil
	trimScan(&r.batch)
	if done := r.done; done != nil {
		r.done = nil
		done()
	}
	r.b.reqs.Put(r)
}

// Ingest takes an encoded TracesData or ExportTraceServiceRequest. The
// buffer owns buf from then on. Spans with an all-zero trace ID or span ID are
// rejected with a permanent error and the rest go through. When the queue is
// full, Ingest blocks until ctx ends and then returns a retryable error.
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
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed || !b.started {
		if done != nil {
			done()
		}
		return 0, ErrShutdown
	}
	req := b.reqs.Get().(*request)
	req.buf = buf
	if err := wire.Scan(buf, &req.batch); err != nil {
		req.batch.Reset()
		req.buf = nil
		b.reqs.Put(req)
		if done != nil {
			done()
		}
		return 0, consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
	}
	req.done = done
	spans := req.batch.Spans
	invalid := 0
	n := uint64(len(b.shards))
	for i := range spans {
		sp := &spans[i]
		if !sp.ValidIDs() {
			invalid++
			continue
		}
		h := hashID(&sp.TraceID)
		sh := (uint64(uint32(h)) * n) >> 32
		req.per[sh] = append(req.per[sh], int32(i))
	}
	var invalidErr error
	if invalid > 0 {
		b.set.Observer.Refused(RefusedInvalid, invalid)
		invalidErr = consumererror.NewPermanent(&RejectedError{Rejected: invalid, Total: len(spans)})
	}
	targets := 0
	for _, idx := range req.per {
		if len(idx) > 0 {
			targets++
		}
	}
	if targets == 0 {
		req.pending.Store(1)
		req.release()
		return len(spans), invalidErr
	}
	req.weight = min(queueWeight(buf, &req.batch), b.queuedMax)
	if err := b.queued.Acquire(ctx, req.weight); err != nil {
		b.set.Observer.Refused(RefusedQueueFull, len(spans)-invalid)
		req.weight = 0
		req.pending.Store(1)
		req.release()
		return len(spans), fmt.Errorf("tailsift: buffer queue full (buffer.max_queued_bytes), retry later: %w", err)
	}
	// One reference per target shard, plus Ingest's own while it walks per.
	req.pending.Store(int32(targets) + 1)
	defer req.release()
	accepted, refused := 0, 0
	for sh, idx := range req.per {
		if len(idx) == 0 {
			continue
		}
		if refused == 0 {
			select {
			case b.shards[sh].in <- message{req: req, spans: idx}:
				accepted += len(idx)
				continue
			case <-ctx.Done():
			}
		}
		refused += len(idx)
		req.release()
	}
	if accepted > 0 {
		b.set.Observer.Received(accepted)
	}
	if refused > 0 {
		b.set.Observer.Refused(RefusedQueueFull, refused)
		return len(spans), fmt.Errorf("tailsift: buffer queue full, %d spans refused, retry later: %w", refused, ctx.Err())
	}
	return len(spans), invalidErr
}

// Sync waits until every shard has taken in all that was queued before it
// and has decided the traces that are due by the clock. Tests use it with a
// fake clock instead of sleeping.
func (b *Buffer) Sync(ctx context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.closed {
		return ErrShutdown
	}
	for _, s := range b.shards {
		done := make(chan struct{})
		select {
		case s.in <- message{sync: done}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Shutdown stops taking spans, decides every buffered trace and hands the
// kept ones to the next consumer within ctx. It returns what the next
// consumer refused. It is safe to call more than once.
func (b *Buffer) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()
	defer b.kept.Close()
	if !started {
		return nil
	}
	defer b.cancel()
	defer memLimit.remove(b.cfg)

	replies := make([]chan error, len(b.shards))
	var errs []error
	for i, s := range b.shards {
		replies[i] = make(chan error, 1)
		select {
		case s.in <- message{flush: &flush{ctx: ctx, done: replies[i]}}:
		case <-ctx.Done():
			b.cancel()
			return fmt.Errorf("tailsift: shutdown: %w", ctx.Err())
		}
	}
	for _, r := range replies {
		select {
		case err := <-r:
			errs = append(errs, err)
		case <-ctx.Done():
			b.cancel()
			return fmt.Errorf("tailsift: shutdown: %w", ctx.Err())
		}
	}
	b.done.Wait()
	return errors.Join(errs...)
}
