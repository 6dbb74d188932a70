package tracebuf

import (
	"context"
	"math"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// Rescue (rescue.window): a trace dropped at completion is held, records and
// all, for the window. Its late spans join it; one that brings the trace's
// first ERROR status or lengthens it makes the policies decide again, and a
// keep then sends the whole trace on. The held traces are bounded by
// rescue.max_bytes, apart from the buffer's budget.

// heldSet is a shard's dropped traces held for rescue.window, oldest first.
type heldSet struct {
	byID           map[[16]byte]*trace // nil when rescue is off
	list           list
	bytes, traces  int64
	budget         int64 // rescue.max_bytes / shards
	window         int64 // rescue.window
	reportedBytes  int64 // last reported to the observer
	reportedTraces int64
}

// next is when the oldest hold ends, or math.MaxInt64.
func (h *heldSet) next() int64 {
	if t := h.list.head; t != nil {
		return t.last + h.window
	}
	return math.MaxInt64
}

// hold keeps a dropped trace's records for the rescue window, letting the
// oldest held traces go while the shard's share of rescue.max_bytes is
// exceeded.
func (s *shard) hold(t *trace, now int64) {
	h := &s.held
	t.last = now
	h.byID[t.sum.ID] = t
	h.list.pushBack(t)
	h.bytes += t.size
	h.traces++
	s.trimHeld()
}

// trimHeld lets the oldest held traces go while the shard's share of
// rescue.max_bytes is exceeded.
func (s *shard) trimHeld() {
	for s.held.bytes > s.held.budget && s.held.list.head != nil {
		s.letGo(s.held.list.head)
	}
}

// expireHeld lets go of the traces whose hold has ended by now.
func (s *shard) expireHeld(now int64) {
	h := &s.held
	for t := h.list.head; t != nil && t.last+h.window <= now; t = h.list.head {
		s.letGo(t)
	}
}

// unhold removes t from the held traces without freeing its records.
func (s *shard) unhold(t *trace) {
	h := &s.held
	delete(h.byID, t.sum.ID)
	h.list.remove(t)
	h.bytes -= t.size
	h.traces--
}

// letGo ends the hold of t: its records are freed, and its later spans are
// dropped by the dropped filter like any dropped trace's.
func (s *shard) letGo(t *trace) {
	s.unhold(t)
	s.release(t)
}

// takeHeld adds the spans in s.msg.rescue, late spans of held traces, to
// their traces, and decides a trace again when a span brings its first ERROR
// status or lengthens it. A trace kept now goes to the output batch whole.
// It returns how many of the spans stay dropped.
func (s *shard) takeHeld(ctx context.Context, batch *wire.Batch, now int64) (dropped int) {
	for _, i := range s.msg.rescue {
		sp := &batch.Spans[i]
		t := s.held.byID[sp.TraceID]
		if t == nil { // kept by an earlier span of this message
			if mark, ok := s.decided.keptMark(&sp.TraceID, hashID(&sp.TraceID)); ok {
				s.msg.late = append(s.msg.late, lateSpan{idx: i, mark: mark})
			} else {
				dropped++
			}
			continue
		}
		hadError := t.sum.StatusMask&sampling.StatusErrorBit != 0
		before := t.sum.Duration()
		gid := s.groupOf(batch, sp.Scope)
		t.pending += recordSize(gid, sp)
		s.held.bytes += s.addSpan(t, sp, &batch.Scopes[sp.Scope], gid)
		newError := !hadError && t.sum.StatusMask&sampling.StatusErrorBit != 0
		if newError || t.sum.Duration() > before {
			if d := s.evaluate(t, true); d.Keep() {
				s.unhold(t)
				s.keep(t, d, nil, now, true)
				s.deps.observer.Rescued(d.Policy)
				s.deps.observer.Late(true, 1) // it leaves with its trace
				s.release(t)
				continue
			}
		}
		dropped++
	}
	s.trimHeld()
	if s.out.due() {
		s.flushOutAsync(ctx, false)
	}
	return dropped
}
