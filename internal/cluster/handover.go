package cluster

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/wire"
)

// HandOver hands the traces buffered here that this gateway no longer owns
// to their owners, and the decisions it remembers of traces whose owner
// changed: decisions first, so that the late spans that follow the traces
// find them. It is bounded by handover.timeout and handover.max_bytes and
// paced at handover.bytes_per_second; what it does not hand over stays in
// the buffer and is decided here. Its sends do not go through the router's
// queues: each waits for the member's answer, at most the router's send
// timeout and what is left of handover.timeout, and what a member did not
// take (refused, or not answered in time) is given back to the buffer.
// It runs after the member set settled, and at shutdown, when this
// gateway owns nothing any more.
func (n *Node) HandOver(ctx context.Context) {
	n.handoverMu.Lock()
	defer n.handoverMu.Unlock()
	v := n.view.Load()
	if v == nil || v.others.Len() == 0 {
		return // nobody to hand over to: everything is decided here
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Handover.Timeout)
	defer cancel()
	start := n.clock.Now()
	h := &handover{n: n, all: v.all, others: v.others, gen: v.gen, budget: n.cfg.Handover.MaxBytes, next: start}
	// A draining gateway learns no new decision of others' traces but
	// those of the traces its handovers gave back to be decided here, and
	// those that come back (the router's Fallback, a relay refused): each
	// sweep sends only those not yet where they go
	// (TestDrainDecisionsAfterChange) and those (givenBack), none when
	// every one went and the set is the same.
	draining := n.draining.Load()
	back := n.takeCameBack()
	if !draining {
		n.handed, n.givenBack = nil, nil // every decision is listed
	} else if len(back) > 0 {
		if n.givenBack == nil {
			n.givenBack = make(map[uint64]struct{}, len(back))
		}
		for _, hash := range back {
			n.givenBack[hash] = struct{}{}
		}
	}
	if draining && n.handed == nil {
		n.handed = make([]*routing, n.buf.Shards())
	}
	for sh := range n.buf.Shards() {
		var prev *routing
		if draining {
			prev = n.handed[sh]
		}
		rt, ok := h.decisions(ctx, sh, prev)
		if draining {
			n.handed[sh] = rt
		}
		if !ok {
			break
		}
	}
	for sh := range n.buf.Shards() {
		if !h.traces(ctx, sh) {
			break
		}
	}
	if h.traceCount+h.decisionCount > 0 || h.local > 0 {
		n.logger.Info("Handover done",
			zap.Int("traces", h.traceCount), zap.Int("decisions", h.decisionCount),
			zap.Int64("bytes", n.cfg.Handover.MaxBytes-h.budget), zap.Int("decided_here", h.local),
			zap.Duration("took", n.clock.Now().Sub(start)))
	}
}

// handover is one HandOver's progress.
type handover struct {
	n      *Node
	all    *ring.Ring // every member, this gateway included: others' view's
	others *ring.Ring
	gen    uint64    // others' view.gen
	budget int64     // bytes left under max_bytes
	next   time.Time // when the pace lets the next send go

	traceCount, decisionCount, local int
	moves                            int  // ringMoved's changes taken
	tooMany                          bool // ringMoved found a change past maxMoves
}

// chunk is the most one send carries: a tenth of a second at the rate limit.
func (n *Node) chunk() int {
	return int(max(n.cfg.Handover.BytesPerSecond/10, 64<<10))
}

// maxMoves bounds how often one handover follows the member set when it
// changes under it.
const maxMoves = 4

// ringMoved reports whether the member set changed since the handover
// took h.others, and takes the new one. A change being applied is waited
// for (setMu): the router closes a member that leaves before the view
// changes, so that a send to it fails a moment before the view says why.
// What such a member did not take goes to the new owners with the next
// chunks, rather than being decided here from part of its spans (the
// rolling restart of internal/e2e/scaleout split or lost traces so,
// about one run in two). A member that left and came back is a change
// too, though the set is as it was: its connection, and the send on it,
// were closed when it left (TestHandOverMemberLeavesAndComesBack).
func (h *handover) ringMoved() bool {
	h.n.setMu.Lock()
	v := h.n.view.Load()
	h.n.setMu.Unlock()
	if v == nil || v.others.Len() == 0 || v.gen == h.gen {
		return false
	}
	if h.moves >= maxMoves {
		h.tooMany = true
		return false
	}
	h.all, h.others, h.gen = v.all, v.others, v.gen
	h.moves++
	return true
}

// traces hands shard sh's foreign traces to their owners, chunk by chunk.
// It returns false when the handover must stop.
func (h *handover) traces(ctx context.Context, sh int) bool {
	for more := true; more; {
		if h.budget <= 0 {
			return false
		}
		v := h.n.view.Load() // the set the chunk is taken under
		f, m, err := h.n.buf.TakeForeign(ctx, sh, h.stays(v), int(min(int64(h.n.chunk()), h.budget)))
		if err != nil {
			return false
		}
		more = m
		if f.NTraces == 0 {
			return true
		}
		if !h.pace(ctx, len(f.Traces)) {
			h.giveBack(f.Traces, f.NTraces, true)
			return false
		}
		chunk, traces, spans := f.Traces, f.NTraces, f.Spans
		if h.setChanged(v) {
			// The set changed while the chunk waited: the router routes
			// it over the new set's other members, and the traces this
			// gateway owns now would go to one of them, while their
			// later spans come here (TestHandOverChangeWhilePaced).
			var t, s int
			if chunk, t, s = h.keep(chunk, h.n.Owns); chunk == nil {
				continue
			}
			traces, spans = traces-t, spans-s
		}
		cur := h.n.view.Load()
		// Marked handed over: the owner does not count them again (RED).
		// Each member's part waits for its answer: what a member did not
		// take is given back (decided here, or taken out again when the
		// member set changed), not left in a queue that retries it. The
		// traces of a member found down go where their late spans end;
		// those whose late spans end here are left (ErrNoNextUp), and
		// stay (nextup.go).
		left := h.n.router.RouteNowVia(ctx, chunk, h.n.handOver, h.n.nextUpOf(cur))
		// Those of a member found down whose late spans end here
		// (nextup.go) stay, to be decided here whole: not handed over,
		// and not decided here for want of a member, unless no other
		// member is up (the next chunks would fail the same way).
		allDown, stayed := !h.anyUp(cur), 0
		var back [][]byte // what stays here, of chunk
		left = slices.DeleteFunc(left, func(l router.Left) bool {
			if !errors.Is(l.Err, router.ErrNoNextUp) || allDown {
				return false
			}
			t, s := countTraces(l.Data)
			h.budget += int64(len(l.Data)) // not moved
			back = append(back, l.Data)
			h.giveBack(l.Data, t, false)
			traces, spans, stayed = traces-t, spans-s, stayed+len(l.Data)
			return true
		})
		// A member that left the set meanwhile: what it did not take is
		// taken out again with the next chunks, for the new owners.
		moved := len(left) > 0 && h.ringMoved()
		sent := len(chunk) - stayed // what was routed
		bytes := sent
		for _, l := range left {
			switch {
			case moved:
				h.n.logger.Info("Traces not handed over to a member that left; handing them to their new owners",
					zap.String("member", l.Member), zap.Error(l.Err))
			case h.tooMany:
				h.n.logger.Warn("Traces not handed over: the member set changed too often during the handover; deciding them here",
					zap.String("member", l.Member), zap.Error(l.Err), zap.Int("ring_changes", h.moves))
			default:
				// The next chunks would fail the same way: the rest stays here.
				h.n.logger.Warn("Traces not handed over; deciding them here", zap.String("member", l.Member), zap.Error(l.Err),
					zap.Int("ring_changes", h.moves))
			}
			t, s := countTraces(l.Data)
			back = append(back, l.Data)
			h.giveBack(l.Data, t, !moved)
			traces, spans, bytes = traces-t, spans-s, bytes-len(l.Data)
		}
		h.forget(chunk, back)
		if moved {
			// Not moved: taken out again, it is charged again. (The parts
			// are framed anew, a little larger than their share of the
			// chunk: no more than the chunk comes back.)
			h.budget += int64(min(sent-bytes, sent))
		}
		if traces > 0 {
			h.traceCount += traces
			h.n.obs.HandedOver(ctx, traces, spans, bytes)
		}
		if len(left) > 0 {
			if moved {
				// The traces given back are foreign under the new set
				// too, unless this gateway owns them now: the next
				// chunks take them again, for their new owners.
				more = true
				continue
			}
			return false
		}
	}
	return true
}

// stays is the predicate of the traces that stay here under v: those this
// gateway owns and, when a member is down and another is up, those of its
// traces whose late spans end here (nextup.go), which the handover does
// not take out (it took them out again chunk after chunk, until
// handover.timeout: TestHandOverKilledMemberTracesThatStayHere). With no
// other member up they are taken out, and given back, decided here for
// want of a member, and the handover stops.
func (h *handover) stays(v *view) func(uint64) bool {
	if !slices.ContainsFunc(v.others.Members(), h.n.router.Down) || !h.anyUp(v) {
		return h.n.Owns
	}
	here := h.n.endsHere(v)
	return func(hash uint64) bool { return h.n.Owns(hash) || here(hash) }
}

// anyUp reports whether a member other than this gateway is up under v.
func (h *handover) anyUp(v *view) bool {
	return slices.ContainsFunc(v.others.Members(), func(m string) bool { return !h.n.router.Down(m) })
}

// setChanged reports whether the view is another than v: a member set
// applied (setMu waits for one being applied, whose router has changed
// before its view), or the drain begun.
func (h *handover) setChanged(v *view) bool {
	h.n.setMu.Lock()
	defer h.n.setMu.Unlock()
	return h.n.view.Load() != v
}

// keep gives the traces of chunk that stay here (this gateway owns them,
// or their late spans come here) back to the buffer, to be decided here
// whole, and returns the rest (nil when nothing is left) and the traces
// and spans it kept.
func (h *handover) keep(chunk []byte, here func(uint64) bool) (rest []byte, traces, spans int) {
	own, other, ownSpans, _, err := router.Partition(chunk, here)
	if err != nil || own == nil {
		return chunk, 0, 0
	}
	traces, _ = countTraces(own)
	h.budget += int64(len(own)) // not moved
	h.giveBack(own, traces, false)
	return other, traces, ownSpans
}

// forget drops from a draining gateway's givenBack the traces of chunk
// that a member took (all but those of back, which stay here): their
// decisions are not made here, and a hash kept would have every later
// sweep list every decision (TestDrainForgetsTracesHandedOverLater).
func (h *handover) forget(chunk []byte, back [][]byte) {
	if !h.n.draining.Load() || len(h.n.givenBack) == 0 {
		return
	}
	stays := map[uint64]struct{}{}
	for _, b := range back {
		for _, hash := range traceHashes(b) {
			stays[hash] = struct{}{}
		}
	}
	for _, hash := range traceHashes(chunk) {
		if _, ok := stays[hash]; !ok {
			delete(h.n.givenBack, hash)
		}
	}
}

// countTraces returns the traces and spans of buf, an encoded TracesData
// (a part of a chunk: a trace's spans may be apart, under their scopes).
func countTraces(buf []byte) (traces, spans int) {
	var b wire.Batch
	if wire.Scan(buf, &b) != nil {
		return 0, 0
	}
	ids := make([][16]byte, len(b.Spans))
	for i := range b.Spans {
		ids[i] = b.Spans[i].TraceID
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	return len(slices.Compact(ids)), len(b.Spans)
}

// traceHashes returns the ring hashes of the traces of buf, an encoded
// TracesData, with repeats.
func traceHashes(buf []byte) []uint64 {
	var b wire.Batch
	if wire.Scan(buf, &b) != nil {
		return nil
	}
	out := make([]uint64, len(b.Spans))
	for i := range b.Spans {
		out[i] = ring.Hash(b.Spans[i].TraceID)
	}
	return out
}

// giveBack returns traces (an encoded TracesData of n traces) that could
// not be handed over to the buffer: to be decided here (local, counted so),
// or taken out again for the owners of a new member set.
func (h *handover) giveBack(traces []byte, n int, local bool) {
	if local {
		h.local += n
		h.n.obs.DecidedLocally(context.Background(), n)
		if h.n.draining.Load() {
			// Decided here after this sweep: their decisions go at the
			// next ones.
			if h.n.givenBack == nil {
				h.n.givenBack = map[uint64]struct{}{}
			}
			for _, hash := range traceHashes(traces) {
				h.n.givenBack[hash] = struct{}{}
			}
		}
	}
	// Not bounded by the handover's ctx: these traces are not lost. They
	// were counted (RED) when this gateway first took them in.
	if _, err := h.n.buf.IngestAgain(context.Background(), traces, nil); err != nil {
		h.n.logger.Error("Traces that could not be handed over were not taken back", zap.Int("traces", n), zap.Error(err))
	}
}

// pace charges bytes to the budget and waits what the rate limit asks:
// a send of bytes goes bytes/bytes_per_second after the one before it was
// let go, the time that one took to be answered counted in (the sends
// wait for their answers). It returns false when ctx ended first.
func (h *handover) pace(ctx context.Context, bytes int) bool {
	h.budget -= int64(bytes)
	now := h.n.clock.Now()
	per := time.Duration(float64(bytes) / float64(h.n.cfg.Handover.BytesPerSecond) * float64(time.Second))
	if per < time.Millisecond {
		return ctx.Err() == nil // too small to pace
	}
	// A send that took longer than its own time goes on at once; there is
	// no credit beyond that (no burst after a pause).
	h.next = maxTime(h.next, now.Add(-per)).Add(per)
	d := h.next.Sub(now)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := h.n.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
