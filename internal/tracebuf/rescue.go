package tracebuf

import (
	"context"

	"github.com/tailsift/tailsift/internal/wire"
	tsampling "github.com/tailsift/tailsift/sampling"
)

// Rescue (rescue.window): a trace dropped at completion is held, records and
// all, for the window. Its late spans join it; one that brings the trace's
// first ERROR status or lengthens it makes the policies decide again, and a
// keep then sends the whole trace on. The held traces are bounded by
// rescue.max_bytes, apart from the buffer's budget.

// hold keeps a dropped trace's records for the rescue window, letting the
// oldest held traces go while the shard's share of rescue.max_bytes is
// exceeded.
func (s *shard) hold(t *trace, now int64) {
	t.last = now
	s.held[t.sum.ID] = t
	s.byHeld.pushBack(t)
	s.heldBytes += t.size
	s.heldTraces++
	for s.heldBytes > s.heldBudget && s.byHeld.head != nil {
		s.letGo(s.byHeld.head)
	}
}

// unhold removes t from the held traces without freeing its records.
func (s *shard) unhold(t *trace) {
	delete(s.held, t.sum.ID)
	s.byHeld.remove(t)
	s.heldBytes -= t.size
	s.heldTraces--
}

// letGo ends the hold of t: its records are freed, and its later spans are
// dropped by the dropped filter like any dropped trace's.
func (s *shard) letGo(t *trace) {
	s.unhold(t)
	s.release(t)
}

// takeHeld adds the spans in s.rescue, late spans of held traces, to their
// traces, and decides a trace again when a span brings its first ERROR status
// or lengthens it. A trace kept now goes to the output batch whole. It
// returns how many of the spans stay dropped.
func (s *shard) takeHeld(ctx context.Context, batch *wire.Batch, now int64) (dropped int) {
	for _, i := range s.rescue {
		sp := &batch.Spans[i]
		t := s.held[sp.TraceID]
		if t == nil { // kept by an earlier span of this message
			if th, ok := s.keptThreshold(&sp.TraceID, hashID(&sp.TraceID)); ok {
				s.late = append(s.late, lateSpan{idx: i, th: th})
			} else {
				dropped++
			}
			continue
		}
		gid := s.groupOf(batch, sp.Scope)
		t.pending = recordSize(gid, sp)
		grown := s.appendRecord(t, sp, gid)
		s.heldBytes += grown
		hadError := t.sum.StatusMask&tsampling.StatusErrorBit != 0
		before := t.sum.Duration()
		t.sum.AddSpan(len(sp.Raw), sp.Status, sp.Start, sp.End)
		s.observeSpan(&t.sum, sp, &batch.Scopes[sp.Scope])
		newError := !hadError && t.sum.StatusMask&tsampling.StatusErrorBit != 0
		if newError || t.sum.Duration() > before {
			if d := s.evaluate(t); d.Keep() {
				s.unhold(t)
				s.keep(t, d, now)
				s.b.set.Observer.Rescued(d.Policy)
				s.b.set.Observer.Late(true, 1) // it leaves with its trace
				s.release(t)
				continue
			}
		}
		dropped++
	}
	for s.heldBytes > s.heldBudget && s.byHeld.head != nil {
		s.letGo(s.byHeld.head)
	}
	if s.outDue() {
		s.flushOutAsync(ctx)
	}
	return dropped
}
