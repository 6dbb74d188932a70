package tracebuf

import (
	"encoding/binary"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// traceOverhead is the bookkeeping counted per buffered trace: the struct
// and its map entry.
const traceOverhead = 200

// trace is one buffered, undecided trace. Its spans are kept as records in
// recs: uvarint(group id), uvarint(length), the span's encoded bytes.
type trace struct {
	sum     sampling.Trace
	hash    uint64
	recs    []byte
	first   int64 // arrival of the first span, clock nanoseconds
	last    int64 // arrival of the latest span
	hasRoot bool
	decided bool
	size    int64 // bytes accounted to the budget
	pending int   // record bytes the current message will add

	byFirst links // all buffered traces, by first arrival
	byQuiet links // traces whose root arrived, by latest arrival, in their quiet class
	inQuiet bool
	class   uint8 // quiet class (completion.go)

	// Learned completion (learn.go): the largest gap between arrivals
	// from the root on, and the route's slot and its generation.
	gap      int64
	route    int32
	routeGen uint32
}

// forEachRecord calls f for each buffered span record of t.
func (t *trace) forEachRecord(f func(gid uint32, raw []byte)) {
	recs := t.recs
	for len(recs) > 0 {
		gid, n := binary.Uvarint(recs)
		l, m := binary.Uvarint(recs[n:])
		start := n + m
		f(uint32(gid), recs[start:start+int(l)])
		recs = recs[start+int(l):]
	}
}

// recordSize is the size of sp's record in group gid.
func recordSize(gid uint32, sp *wire.Span) int {
	return varintLen(uint64(gid)) + varintLen(uint64(len(sp.Raw))) + len(sp.Raw)
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendRecord appends sp's record to t (t.pending bytes were announced),
// takes a reference on its group, and returns how much t's record buffer
// grew, which it has added to t.size.
func (s *shard) appendRecord(t *trace, sp *wire.Span, gid uint32) int64 {
	before := cap(t.recs)
	if t.pending > 0 {
		if need := len(t.recs) + t.pending; need > cap(t.recs) {
			// Exact for a trace's first message; later ones leave 1/8 room,
			// so a trace fed by many messages is not copied quadratically.
			if cap(t.recs) > 0 {
				need += need / 8
			}
			grown := s.usage.arena.alloc(need)[:len(t.recs)]
			copy(grown, t.recs)
			s.usage.arena.release(t.recs)
			t.recs = grown
		}
		t.pending = 0
	}
	t.recs = binary.AppendUvarint(t.recs, uint64(gid))
	t.recs = binary.AppendUvarint(t.recs, uint64(len(sp.Raw)))
	t.recs = append(t.recs, sp.Raw...)
	s.usage.groups.ref(gid)
	grown := int64(cap(t.recs) - before)
	t.size += grown
	return grown
}

type links struct{ prev, next *trace }

// list is an intrusive doubly linked list of traces through one of their
// links fields.
type list struct {
	head, tail *trace
	at         func(*trace) *links
}

func (l *list) pushBack(t *trace) {
	lt := l.at(t)
	lt.prev, lt.next = l.tail, nil
	if l.tail != nil {
		l.at(l.tail).next = t
	} else {
		l.head = t
	}
	l.tail = t
}

func (l *list) remove(t *trace) {
	lt := l.at(t)
	if lt.prev != nil {
		l.at(lt.prev).next = lt.next
	} else {
		l.head = lt.next
	}
	if lt.next != nil {
		l.at(lt.next).prev = lt.prev
	} else {
		l.tail = lt.prev
	}
	lt.prev, lt.next = nil, nil
}

func (l *list) moveToBack(t *trace) {
	if l.tail == t {
		return
	}
	l.remove(t)
	l.pushBack(t)
}
