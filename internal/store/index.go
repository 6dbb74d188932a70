package store

// tailSeg is the segment number of a ref into the unsealed tail (the
// write-ahead file's records, kept in memory): off is then the record's
// offset in the tail.
const tailSeg = 0

// ref locates records with spans of a trace: a sealed block (segment,
// offset of the block in it) or a record of the tail.
type ref struct {
	seg uint32
	off uint32
}

// entry is what the index holds for one trace.
type entry struct {
	refs      []ref
	dec       Decision
	decided   bool
	delivered bool
	inTail    bool   // some record of the trace is in the tail
	last      uint32 // the newest sealed segment with a record of the trace
}

// index maps trace IDs to their entries, and each segment (and the tail) to
// the trace IDs with records in it, so that evicting a segment forgets them.
type index struct {
	byID   map[[16]byte]*entry
	bySeg  map[uint32][][16]byte
	tailID [][16]byte
}

func newIndex() *index {
	return &index{byID: make(map[[16]byte]*entry), bySeg: make(map[uint32][][16]byte)}
}

// get returns id's entry, creating it.
func (x *index) get(id [16]byte) *entry {
	e := x.byID[id]
	if e == nil {
		e = &entry{}
		x.byID[id] = e
	}
	return e
}

// apply indexes record r found at ref at (a block or a tail record).
func (x *index) apply(r *Record, at ref) {
	for _, id := range r.IDs {
		e := x.get(id)
		x.touch(id, e, at.seg)
		switch r.Kind {
		case KindSpans:
			if n := len(e.refs); n == 0 || e.refs[n-1] != at {
				e.refs = append(e.refs, at)
			}
		case KindDecision:
			e.dec, e.decided = r.Decision, true
			// A new decision (a rescue or a retroactive keep) waits for
			// its own delivery.
			e.delivered = false
		case KindDelivered:
			e.delivered = true
		}
	}
}

// touch notes that id has a record in segment seg (or the tail).
func (x *index) touch(id [16]byte, e *entry, seg uint32) {
	if seg == tailSeg {
		if !e.inTail {
			e.inTail = true
			x.tailID = append(x.tailID, id)
		}
		return
	}
	if e.last != seg {
		e.last = seg
		x.bySeg[seg] = append(x.bySeg[seg], id)
	}
}

// sealed moves the tail's refs into the block at (seg, off): the tail
// became that block.
func (x *index) sealed(seg, off uint32) {
	for _, id := range x.tailID {
		e := x.byID[id]
		if e == nil {
			continue
		}
		e.inTail = false
		kept := e.refs[:0]
		moved := false
		for _, r := range e.refs {
			if r.seg != tailSeg {
				kept = append(kept, r)
			} else if !moved {
				kept = append(kept, ref{seg: seg, off: off})
				moved = true
			}
		}
		e.refs = kept
		x.touch(id, e, seg)
	}
	x.tailID = x.tailID[:0]
}

// evict forgets segment seg: the refs into it, and the traces with no
// record left anywhere.
func (x *index) evict(seg uint32) {
	for _, id := range x.bySeg[seg] {
		e := x.byID[id]
		if e == nil {
			continue
		}
		if !e.inTail && e.last <= seg {
			delete(x.byID, id)
			continue
		}
		kept := e.refs[:0]
		for _, r := range e.refs {
			if r.seg != seg {
				kept = append(kept, r)
			}
		}
		e.refs = kept
	}
	delete(x.bySeg, seg)
}

// dropTail forgets the tail's refs: its records are lost.
func (x *index) dropTail() {
	for _, id := range x.tailID {
		e := x.byID[id]
		if e == nil {
			continue
		}
		e.inTail = false
		kept := e.refs[:0]
		for _, r := range e.refs {
			if r.seg != tailSeg {
				kept = append(kept, r)
			}
		}
		e.refs = kept
		if e.last == tailSeg {
			delete(x.byID, id)
		}
	}
	x.tailID = x.tailID[:0]
}
