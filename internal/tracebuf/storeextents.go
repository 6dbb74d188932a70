package tracebuf

import (
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// The shards' side of the store's rescue (storerescue.go): what a shard
// remembers of the traces it dropped, so that a late span that changes
// nothing is let go at once, and the way a late span that may change a
// decision reaches the rescuer.

// droppedRecent is how many recently dropped traces a shard remembers the
// extent of: 65 536, about 2.4 MB a shard (a map of trace-ID hashes to
// extents, no pointers, and a ring of the hashes). A late span of a trace
// the shard forgot costs the rescuer a read from the store (decompress the
// trace's blocks, scan their requests): with 16 384 traces remembered, a
// fast path at 30 000 spans/s (2 400 traces/s) forgot a trace after 7 s,
// and the benchmark's late spans (10-30 s) made the rescuer's reads 17 %
// of the collector's CPU. 65 536 covers 27 s at that rate.
const droppedRecent = 1 << 16

// droppedExtents is a shard's memory of its recently dropped traces'
// extents (a ring), keyed by trace-ID hash, so that a late span that
// brings no error and does not lengthen its trace is let go at once,
// without a copy or a read. Two traces whose IDs hash alike share an
// entry: one of them may then be let go when its late span does change
// its trace (a chance of about 1 in 2^48 at 65 536 entries).
type droppedExtents struct {
	byHash map[uint64]extent
	ring   []uint64
	next   int
}

// remember notes the extent of a trace the shard dropped (h: hashID).
func (d *droppedExtents) remember(h uint64, e extent) {
	if d.byHash == nil {
		d.byHash = make(map[uint64]extent, droppedRecent)
		d.ring = make([]uint64, droppedRecent)
	}
	if old := d.ring[d.next]; old != 0 {
		delete(d.byHash, old)
	}
	d.ring[d.next] = h
	d.next = (d.next + 1) % droppedRecent
	d.byHash[h] = e
}

// changes reports whether sp (of the trace with hash h) could change the
// decision on its trace: it brings the first error, or lengthens the
// trace, or the trace is not remembered. It widens the remembered extent
// to sp.
func (d *droppedExtents) changes(h uint64, sp *wire.Span) bool {
	e, ok := d.byHash[h]
	if !ok {
		return true
	}
	newError := sp.Status == statusError && !e.hasError
	longer := sp.Start < e.start || sp.End > e.end
	if !newError && !longer {
		return false
	}
	e.hasError = e.hasError || sp.Status == statusError
	e.start, e.end = min(e.start, sp.Start), max(e.end, sp.End)
	d.byHash[h] = e
	return true
}

// rememberDropped notes the extent of a trace the shard dropped.
func (s *shard) rememberDropped(t *trace) {
	if h := s.deps.store; h != nil {
		h.extents[s.id].remember(t.hash, extent{
			start: t.sum.Start, end: t.sum.End, hasError: t.sum.StatusMask&sampling.StatusErrorBit != 0,
		})
	}
}

// lateDropped offers a late span of a dropped trace (hash: hashID) to the
// rescuer, when the buffer has a store and the span could change the
// decision. It never blocks.
func (s *shard) lateDropped(batch *wire.Batch, sp *wire.Span, hash uint64) {
	h := s.deps.store
	if h == nil || h.rescue == nil || !h.extents[s.id].changes(hash, sp) {
		return
	}
	e := &s.enc
	e.spanBuf = append(e.spanBuf[:0], sp.Raw...)
	e.ends = append(e.ends[:0], len(e.spanBuf))
	rs := wire.AppendResourceSpans(nil, &batch.Scopes[sp.Scope], e.spanBuf, e.ends)
	select {
	case h.rescue.in <- lateReq{id: sp.TraceID, spanID: sp.SpanID, rs: rs}:
	default:
	}
}
