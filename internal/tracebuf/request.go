package tracebuf

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tailsift/tailsift/internal/wire"
)

// A request's way into the shards: its spans sorted by shard, and room
// reserved for it in their queues.

// request is one Ingest call's buffer and scan, shared read-only by the
// shards it was routed to; the last of them to finish releases it.
type request struct {
	b     *Buffer
	buf   []byte
	batch wire.Batch
	per   [][]int32 // span indexes, per shard
	// hashes holds each valid span's hashID of its trace ID and groups
	// each scope's group hash (interner.hash), computed once when the
	// request is routed: the shards use them instead of hashing again,
	// each shard the groups of the whole request.
	hashes  []uint64
	groups  []uint64
	pending atomic.Int32
	weight  int64
	// noted is set once the request is noted in its shards' queues of
	// requests recorded to the store and not taken in (storequeued.go).
	noted bool
	done  func() // called once the buffer no longer reads buf
}

func (r *request) release() {
	if r.pending.Add(-1) != 0 {
		return
	}
	r.b.queued.Release(r.weight)
	r.weight = 0 // a pooled request that takes no queue room must release none
	r.noted = false
	for i := range r.per {
		r.per[i] = r.per[i][:0]
	}
	r.buf = nil
	trimScan(&r.batch)
	if cap(r.hashes) > maxPooledSpans {
		r.hashes, r.groups = nil, nil
	}
	if done := r.done; done != nil {
		r.done = nil
		done()
	}
	r.b.reqs.Put(r)
}

// route sorts the valid spans of the scanned req by shard, and returns how
// many spans have invalid IDs and how many shards the others go to. It
// keeps each valid span's trace ID hash and each scope's group hash in req
// for the shards.
func (b *Buffer) route(req *request) (invalid, targets int) {
	spans := req.batch.Spans
	req.hashes = slices.Grow(req.hashes[:0], len(spans))[:len(spans)]
	checked := req.batch.SkipInvalid // the scan left out the spans with bad IDs
	for i := range spans {
		sp := &spans[i]
		if !checked && !sp.ValidIDs() {
			invalid++
			continue
		}
		h := hashID(&sp.TraceID)
		req.hashes[i] = h
		sh := b.shardOfHash(h)
		if len(req.per[sh]) == 0 {
			targets++
		}
		req.per[sh] = append(req.per[sh], int32(i))
	}
	if invalid < len(spans) {
		scopes := req.batch.Scopes
		req.groups = slices.Grow(req.groups[:0], len(scopes))[:len(scopes)]
		var d xxhash.Digest
		for k := range scopes {
			req.groups[k] = hashScope(&d, &scopes[k])
		}
	}
	return invalid, targets
}

// shardOf is the shard that owns a trace.
func (b *Buffer) shardOf(id *[16]byte) int {
	return b.shardOfHash(hashID(id))
}

// shardOfHash is the shard that owns the trace whose ID hashes to h.
func (b *Buffer) shardOfHash(h uint64) int {
	return int((uint64(uint32(h)) * uint64(len(b.shards))) >> 32)
}

// reserve takes, all or none, req's bytes in buffer.max_queued_bytes and a
// slot in the queue of every shard it goes to, waiting until ctx ends, wait
// (when > 0) has passed or Shutdown begins. It returns why it gave up:
// ctx's error (context.DeadlineExceeded after wait) or ErrShutdown; or, at
// once, a *tooLarge for a request heavier than the whole queue, unless
// again.
//
// A request heavier than the whole queue could only be admitted by
// counting it as less than it holds, which is what reserve did before: it
// then waited for an empty queue and held up to its weight on the heap
// against a budget it counted as full (3.8 times the budget). The budget is
// a promise about memory, so reserve takes no room for such a request, and
// Ingest takes it in as pieces within the queue instead (split.go). again
// (spans taken in again: a handover given back, a replay from the store;
// or forwarded by another gateway, which acknowledged them; the control
// they came with belongs to the whole request) keeps the old way, counted
// as the whole queue: those spans were accepted once, and are not split.
// They are one handover chunk (at most one trace past the chunk's size, a
// trace within completion.max_trace_bytes), or one request a queue took
// before.
func (b *Buffer) reserve(ctx context.Context, req *request, wait time.Duration, again bool) error {
	req.weight = fitScan(req.buf, &req.batch, b.queuedMax)
	if req.weight > b.queuedMax {
		if !again {
			weight := req.weight
			req.weight = 0
			return &tooLarge{weight: weight}
		}
		req.weight = b.queuedMax
	}
	if b.tryReserve(req) {
		return nil
	}
	if wait > 0 {
		var cancelWait context.CancelFunc
		ctx, cancelWait = context.WithTimeout(ctx, wait)
		defer cancelWait()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.closing, cancel)()
	if err := b.queued.Acquire(wctx, req.weight); err != nil {
		req.weight = 0
		return b.gaveUp(ctx)
	}
	// In shard order, so that two requests never wait on each other.
	for sh, idx := range req.per {
		if len(idx) == 0 {
			continue
		}
		if err := b.room[sh].Acquire(wctx, 1); err != nil {
			b.unreserve(req, sh)
			return b.gaveUp(ctx)
		}
	}
	return nil
}

// tryReserve is reserve without waiting.
func (b *Buffer) tryReserve(req *request) bool {
	if !b.queued.TryAcquire(req.weight) {
		return false
	}
	for sh, idx := range req.per {
		if len(idx) > 0 && !b.room[sh].TryAcquire(1) {
			b.unreserve(req, sh)
			return false
		}
	}
	return true
}

// unreserve gives back req's bytes and its slots in the shards before upTo.
func (b *Buffer) unreserve(req *request, upTo int) {
	b.queued.Release(req.weight)
	req.weight = 0
	for sh, idx := range req.per[:upTo] {
		if len(idx) > 0 {
			b.room[sh].Release(1)
		}
	}
}

// gaveUp says why a wait for room ended.
func (b *Buffer) gaveUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrShutdown
}

// tooLarge is reserve's answer for a request heavier than the whole queue:
// ingest takes it in as pieces, and a piece of one span heavier than the
// queue is refused with a TooLargeError.
type tooLarge struct{ weight int64 }

func (e *tooLarge) Error() string { return "request heavier than buffer.max_queued_bytes" }

// drop recycles a request that no shard was given.
func (r *request) drop() {
	r.pending.Store(1)
	r.release()
}
