package store

import "math"

// ref locates records with spans of a trace: a block (segment, offset of
// the block in it). Segments are numbered from 1.
type ref struct {
	seg uint32
	off uint32
}

// inlineRefs is how many refs an entry holds itself; a trace whose spans
// are in more blocks keeps the rest in index.more.
const inlineRefs = 3

// Entry flags.
const (
	flagDecided uint8 = 1 << iota
	flagKeep
	flagDelivered
	flagRV    // the decision has an rv, in index.rvs
	flagSpans // entry.spans is set: a spans record of the trace was indexed
)

// maxRefs is the most blocks an entry refers to. It was 255 (a uint8),
// which a long trace at a low request rate, about one request a block,
// went past: its newest spans, an ERROR among them perhaps, were not read
// back. A uint16 takes the padding that followed the uint8; an entry is as
// big as before.
const maxRefs = math.MaxUint16

// entry is what the index holds for one trace. It holds no pointer, so
// that the garbage collector never scans the index: the policy and reason
// are interned.
type entry struct {
	refs   [inlineRefs]ref
	nrefs  uint16 // refs in use, inline ones first, then more's
	policy uint16
	reason uint16
	flags  uint8
	last   uint32 // the newest sealed segment with a record of the trace
	// spans is the low 32 bits of the sequence of the trace's newest
	// spans record (flagSpans): a delivered record with a mark (kind 8)
	// delivers the trace only if the mark is not older. 32 bits fill the
	// entry's padding (64 would make it 56 bytes instead of 48); compared
	// modulo 2^32 (spansAfter), they err only when the mark is 2^31
	// records or more past the spans record, and then toward not
	// delivered: the trace is sent again after a restart.
	spans     uint32
	threshold uint64
}

// spansAfter reports whether e holds a spans record newer than mark (the
// sequence up to which a delivery covers the trace's spans records).
func spansAfter(e *entry, mark uint64) bool {
	return e.flags&flagSpans != 0 && int32(e.spans-uint32(mark)) > 0
}

// index maps trace IDs to their entries, and each segment to
// the trace IDs with records in it, so that evicting a segment forgets them.
//
// An entry lives in ents and the map holds its position: indexing a record
// of a trace already held is one map lookup and an update in place, not a
// lookup, a copy and an assignment. Neither holds pointers. ents is a list
// of fixed chunks, not one slice: growing a slice of millions of entries
// copied all of them at each doubling, which was 28 % of the index's CPU
// while the store filled (and allocated a new slice as large as the
// index); a chunk is added instead, and entries never move.
type index struct {
	slots map[[16]byte]uint32 // trace ID → its entry in ents
	ents  [][]entry           // chunks of entChunk entries
	nents uint32              // entries in use or free
	free  []uint32            // positions in ents of forgotten traces
	more  map[[16]byte][]ref  // refs past the inline ones (rare)
	bySeg map[uint32]*segIDs
	// last is bySeg's list of the segment touched last (the one being
	// written, nearly always), so that touching costs no map lookup.
	last    *segIDs
	lastSeg uint32
	names   []string
	nameID  map[string]uint16
	// rvs holds the rv of the decisions that have one (flagRV), by
	// entry: few traces (kept on a derived randomness), so a side map
	// rather than 8 more bytes in every entry.
	rvs map[*entry]uint64
}

func newIndex() *index {
	return &index{
		slots: make(map[[16]byte]uint32), more: make(map[[16]byte][]ref), bySeg: make(map[uint32]*segIDs),
		names: []string{""}, nameID: map[string]uint16{"": 0}, rvs: make(map[*entry]uint64),
	}
}

// entChunk is the number of entries in a chunk of index.ents (192 KiB).
const entChunk = 1 << 12

// ent returns the entry at position i.
func (x *index) ent(i uint32) *entry { return &x.ents[i/entChunk][i%entChunk] }

// len returns the number of traces held.
func (x *index) len() int { return len(x.slots) }

// get returns trace id's entry, valid until the trace is forgotten.
func (x *index) get(id [16]byte) (*entry, bool) {
	i, ok := x.slots[id]
	if !ok {
		return nil, false
	}
	return x.ent(i), true
}

// getOrAdd returns trace id's entry, adding an empty one if id is new; it
// is valid until the trace is forgotten.
func (x *index) getOrAdd(id [16]byte) *entry {
	if i, ok := x.slots[id]; ok {
		return x.ent(i)
	}
	var i uint32
	if n := len(x.free); n > 0 {
		i, x.free = x.free[n-1], x.free[:n-1]
		*x.ent(i) = entry{}
	} else {
		i = x.nents
		if int(i/entChunk) == len(x.ents) {
			x.ents = append(x.ents, make([]entry, entChunk))
		}
		x.nents++
	}
	x.slots[id] = i
	return x.ent(i)
}

// intern returns the number of a policy or reason name.
func (x *index) intern(s string) uint16 {
	if n, ok := x.nameID[s]; ok {
		return n
	}
	if len(x.names) >= 1<<16-1 {
		return 0 // names are few (policies, reasons); never grow without bound
	}
	n := uint16(len(x.names))
	x.names = append(x.names, s)
	x.nameID[s] = n
	return n
}

// decision returns the entry's decision.
func (x *index) decision(e *entry) Decision {
	d := Decision{
		Keep: e.flags&flagKeep != 0, Threshold: e.threshold,
		Policy: x.names[e.policy], Reason: x.names[e.reason],
	}
	if e.flags&flagRV != 0 {
		d.RV, d.HasRV = x.rvs[e], true
	}
	return d
}

// setRV sets or clears the rv of e's decision.
func (x *index) setRV(e *entry, rv uint64, has bool) {
	switch {
	case has:
		x.rvs[e] = rv
		e.flags |= flagRV
	case e.flags&flagRV != 0:
		delete(x.rvs, e)
		e.flags &^= flagRV
	}
}

// appendRefs appends e's refs (of trace id) to dst.
func (x *index) appendRefs(dst []ref, id [16]byte, e *entry) []ref {
	n := int(e.nrefs)
	dst = append(dst, e.refs[:min(n, inlineRefs)]...)
	if n > inlineRefs {
		dst = append(dst, x.more[id]...)
	}
	return dst
}

// setRefs stores refs as e's (of trace id).
func (x *index) setRefs(id [16]byte, e *entry, refs []ref) {
	e.nrefs = uint16(min(len(refs), maxRefs))
	copy(e.refs[:], refs)
	if len(refs) > inlineRefs {
		x.more[id] = append(x.more[id][:0], refs[inlineRefs:min(len(refs), maxRefs)]...)
	} else {
		delete(x.more, id)
	}
}

// lastRef returns e's last ref.
func (x *index) lastRef(id [16]byte, e *entry) (ref, bool) {
	switch n := int(e.nrefs); {
	case n == 0:
		return ref{}, false
	case n <= inlineRefs:
		return e.refs[n-1], true
	default:
		m := x.more[id]
		return m[len(m)-1], true
	}
}

// addRef appends r to e's refs (of trace id).
func (x *index) addRef(id [16]byte, e *entry, r ref) {
	switch n := int(e.nrefs); {
	case n < inlineRefs:
		e.refs[n] = r
	case n < maxRefs:
		x.more[id] = append(x.more[id], r)
	default:
		return // a trace in maxRefs blocks keeps its oldest refs
	}
	e.nrefs++
}

// apply indexes record r found in the block at.
func (x *index) apply(r *Record, at ref) {
	for _, id := range r.IDs {
		e := x.getOrAdd(id)
		x.touch(id, e, at.seg)
		switch r.Kind {
		case KindSpans:
			if last, ok := x.lastRef(id, e); !ok || last != at {
				x.addRef(id, e, at)
			}
			e.spans = uint32(r.Seq)
			e.flags |= flagSpans
			// Spans of a kept trace recorded after its delivery (late
			// spans) are not delivered until a delivery record follows
			// them: a restart sends the trace again. The flag stayed,
			// and a late span of a kept error trace that was accepted and
			// written, but not yet handed on at a kill -9, was never sent
			// (TestLateSpanOfDeliveredKeepSurvivesCrash).
			if e.flags&flagKeep != 0 {
				e.flags &^= flagDelivered
			}
		case KindDecision:
			d := &r.Decision
			// A keep after a drop (a rescue or a retroactive keep) waits
			// for its own delivery. Otherwise a delivery noted before the
			// decision stands: a shard hands its decisions to the store
			// after the loop that may have sent the trace on already.
			if d.Keep && e.flags&(flagDecided|flagKeep) == flagDecided {
				e.flags &^= flagDelivered
			}
			e.flags = e.flags&^flagKeep | flagDecided
			if d.Keep {
				e.flags |= flagKeep
			}
			e.threshold, e.policy, e.reason = d.Threshold, x.intern(d.Policy), x.intern(d.Reason)
			x.setRV(e, d.RV, d.HasRV)
		case KindDelivered:
			// A delivery covers the spans records queued before it began
			// (its mark): a late span recorded while the trace was in
			// the next consumer's call is not delivered by it. Its
			// record came first, and the delivery stood: a kill -9 before
			// the late span's own delivery lost it
			// (TestLateSpanDuringDeliverySurvivesCrash).
			if !r.Marked || !spansAfter(e, r.Mark) {
				e.flags |= flagDelivered
			}
		}
	}
}

// touch notes that id has a record in segment seg.
func (x *index) touch(id [16]byte, e *entry, seg uint32) {
	if e.last != seg {
		e.last = seg
		if x.last == nil || x.lastSeg != seg {
			l := x.bySeg[seg]
			if l == nil {
				l = &segIDs{}
				x.bySeg[seg] = l
			}
			x.last, x.lastSeg = l, seg
		}
		x.last.add(id)
	}
}

// segIDChunk is the number of trace IDs in a chunk of a segIDs (64 KiB).
const segIDChunk = 1 << 12

// segIDs are the trace IDs with records in one segment, in chunks: a
// segment lists up to a few million, and growing one slice by doubling
// copied them again and again (30 % of the index's CPU).
type segIDs struct {
	chunks [][][16]byte
}

func (l *segIDs) add(id [16]byte) {
	n := len(l.chunks)
	if n == 0 || len(l.chunks[n-1]) == segIDChunk {
		l.chunks = append(l.chunks, make([][16]byte, 0, segIDChunk))
		n++
	}
	l.chunks[n-1] = append(l.chunks[n-1], id)
}

// without removes the refs of segment seg from e (trace id).
func (x *index) without(id [16]byte, e *entry, seg uint32, refs []ref) []ref {
	refs = x.appendRefs(refs[:0], id, e)
	kept := refs[:0]
	for _, r := range refs {
		if r.seg != seg {
			kept = append(kept, r)
		}
	}
	x.setRefs(id, e, kept)
	return refs
}

// forget deletes trace id.
func (x *index) forget(id [16]byte) {
	if i, ok := x.slots[id]; ok {
		x.setRV(x.ent(i), 0, false)
		delete(x.slots, id)
		x.free = append(x.free, i)
	}
	delete(x.more, id)
}

// evict forgets segment seg: the refs into it, and the traces with no
// record left anywhere.
func (x *index) evict(seg uint32) {
	var refs []ref
	l := x.bySeg[seg]
	if l == nil {
		return
	}
	for _, chunk := range l.chunks {
		for _, id := range chunk {
			e, ok := x.get(id)
			if !ok {
				continue
			}
			if e.last <= seg {
				x.forget(id)
				continue
			}
			refs = x.without(id, e, seg, refs)
		}
	}
	delete(x.bySeg, seg)
	if x.last == l {
		x.last = nil
	}
}
