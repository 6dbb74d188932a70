package tracebuf

import (
	"context"
	"sync/atomic"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/sampling"
)

// This file holds the buffer's side of a gateway cluster (internal/cluster):
// commands that run in a shard's goroutine to take out the traces and the
// decisions the gateway no longer owns, and the way in for decisions other
// gateways hand over. The predicate owns takes the trace ID's xxhash, which
// is both ring.Hash and the hash the shards and caches use.

// Shards is the number of shards, for the shard argument of the commands.
func (b *Buffer) Shards() int { return len(b.shards) }

// TakeForeign removes from shard sh the undecided traces that owns does not
// accept, up to about maxBytes of encoded
// spans (always at least one trace when there is one), and returns them,
// and more when it stopped at maxBytes. The traces leave the buffer
// undecided: the caller hands them to their owner, or gives them back with
// Ingest when it cannot.
func (b *Buffer) TakeForeign(ctx context.Context, sh int, owns func(h uint64) bool, maxBytes int) (f cluster.Foreign, more bool, err error) {
	err = b.inShard(ctx, sh, func(_ context.Context, s *shard) {
		f, more = s.takeForeign(owns, maxBytes)
	})
	return f, more, err
}

// ForeignDecisions returns the decisions shard sh remembers, of traces that
// owns does not accept: the kept ones of its ring of recent kept traces
// (the shared kept cache cannot be listed) and its dropped filter.
func (b *Buffer) ForeignDecisions(ctx context.Context, sh int, owns func(h uint64) bool) (d cluster.Decisions, err error) {
	err = b.inShard(ctx, sh, func(_ context.Context, s *shard) {
		// With its mark: th, and the rv or the supplement the trace's
		// spans carry, which its late spans at the new owner carry too.
		for i, id := range s.decided.ring.ids {
			if !owns(hashID(&id)) {
				d.Kept = append(d.Kept, s.decided.ring.marks[i].handed(id))
			}
		}
		for _, gen := range s.decided.dropped.gens {
			for _, h := range gen {
				if h != 0 && !owns(h) {
					d.Dropped = append(d.Dropped, h)
				}
			}
		}
	})
	return d, err
}

// IngestDecisions remembers decisions another gateway handed over, so that
// the late spans of those traces follow them here: spans of a kept trace
// are forwarded marked as its first spans were (its threshold, and its rv
// or supplement), spans of a dropped one are dropped. A kept trace
// buffered here undecided (its late spans came before its decision: the
// agents switched to this owner first) is kept now, marked so, as its late
// spans would have been; a dropped one keeps its own course (an ERROR
// among its spans here still keeps them).
func (b *Buffer) IngestDecisions(ctx context.Context, d *cluster.Decisions) error {
	perShard := make([]cluster.Decisions, len(b.shards))
	for _, k := range d.Kept {
		sh := &perShard[b.shardOf(&k.ID)]
		sh.Kept = append(sh.Kept, k)
	}
	for _, h := range d.Dropped {
		sh := &perShard[b.shardOfHash(h)]
		sh.Dropped = append(sh.Dropped, h)
	}
	for i := range perShard {
		mine := &perShard[i]
		if mine.Len() == 0 {
			continue
		}
		err := b.inShard(ctx, i, func(ctx context.Context, s *shard) {
			now := s.now()
			for _, k := range mine.Kept {
				mark := handedMark(&k)
				if t, ok := s.traces[k.ID]; ok {
					s.keepHandedOver(ctx, t, mark, now)
					continue
				}
				s.decided.rememberKept(k.ID, hashID(&k.ID), mark)
				s.recordHandedKeep(k.ID, mark)
			}
			for _, h := range mine.Dropped {
				s.decided.dropped.add(h, now)
			}
			s.flushStore()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// HandoverRule is the policy (and sampling.rule) of a trace kept because
// another gateway kept it and handed its decision over.
const HandoverRule = "handover"

// ReasonHandover is the reason of a decision handed over by another gateway.
const ReasonHandover = "handover"

// keepHandedOver decides t as kept with mark, how another gateway marked
// its trace's spans.
func (s *shard) keepHandedOver(ctx context.Context, t *trace, mark keptMark, now int64) {
	d := sampling.Decision{Verdict: sampling.Sampled, Threshold: mark.threshold(), Policy: HandoverRule}
	s.logRefused(s.decideMarked(ctx, t, d, &mark, ReasonHandover, now, -1))
}

// handed returns the decision to hand over of trace id, kept with m.
func (m keptMark) handed(id [16]byte) cluster.Kept {
	k := cluster.Kept{ID: id, Threshold: m.th & thMask, Supplement: uint8(m.supplement())}
	k.RV, k.HasRV = m.randomness()
	return k
}

// handedMark is the mark of a kept decision another gateway handed over.
// A supplement it does not know is marked with the threshold.
func handedMark(k *cluster.Kept) keptMark {
	m := keptMark{th: k.Threshold & thMask}
	switch why := sampling.Supplement(k.Supplement); {
	case why == sampling.SupplementRescue || why == sampling.SupplementRetro:
		m.rv = uint64(why) << supplementShift
	case k.HasRV:
		m.rv = k.RV&rvMask | rvSet
	}
	return m
}

// waitRefused is inShard's error when its wait for the shard ended first:
// ErrShutdown once the shutdown began, else a RefusedError (retryable, as
// a request the queues had no room for). The bare context error it was
// made a receiver answer INTERNAL (HTTP 500, not retried) to a request
// with handed-over decisions that met a full shard queue.
func (b *Buffer) waitRefused(ctx context.Context) error {
	if b.closing.Err() != nil {
		return ErrShutdown
	}
	return &RefusedError{Cause: b.gaveUp(ctx)}
}

// Command states: a command runs once, unless its caller gave up first.
const (
	cmdQueued int32 = iota
	cmdRunning
	cmdAbandoned
)

// inShard runs f in shard sh's goroutine and waits until it has run. When ctx
// ends or Shutdown begins first, f does not run, unless it had started, in
// which case inShard waits for it: what f takes out of the shard is never
// lost with a caller that stopped waiting.
func (b *Buffer) inShard(ctx context.Context, sh int, f func(ctx context.Context, s *shard)) error {
	ctx, leave, ok := b.enterWaiting(ctx)
	if !ok {
		return ErrShutdown
	}
	defer leave()
	if err := b.room[sh].Acquire(ctx, 1); err != nil {
		return b.waitRefused(ctx)
	}
	var state atomic.Int32
	done := make(chan struct{})
	b.shards[sh].post(message{run: func(ctx context.Context, s *shard) {
		if !state.CompareAndSwap(cmdQueued, cmdRunning) {
			return
		}
		defer close(done)
		f(ctx, s)
	}})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if state.CompareAndSwap(cmdQueued, cmdAbandoned) {
			return b.waitRefused(ctx)
		}
		<-done
		return nil
	}
}

// takeForeign is TakeForeign in the shard's goroutine.
func (s *shard) takeForeign(owns func(h uint64) bool, maxBytes int) (f cluster.Foreign, more bool) {
	var o outBatch
	o.since = -1
	for _, t := range s.traces {
		if owns(t.hash) {
			continue
		}
		if f.NTraces > 0 && len(o.buf) >= maxBytes {
			more = true
			break
		}
		if dups := s.appendTrace(&o, t, nil, nil, 0); dups > 0 {
			s.deps.observer.Deduplicated(dups)
		}
		f.NTraces++
		f.Spans += t.sum.SpanCount
		s.handOff(t)
	}
	f.Traces = o.buf
	return f, more
}

// handOff removes an undecided trace that another gateway now holds: as
// forget does, without a decision.
func (s *shard) handOff(t *trace) {
	s.unlink(t)
	s.release(t)
}

// unlink takes a trace out of the shard's undecided state and its budget;
// its records are still to be released or held.
func (s *shard) unlink(t *trace) {
	t.decided = true
	delete(s.traces, t.sum.ID)
	s.due.byFirst.remove(t)
	s.due.unquiet(t)
	s.usage.nTraces--
	s.usage.used -= t.size
}
