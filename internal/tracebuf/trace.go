package tracebuf

import (
	"encoding/binary"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// trace is one buffered, undecided trace. Its spans are kept as records:
// uvarint(group id), uvarint(length), the span's encoded bytes, in
// segments of arena memory: recs, then more. A message's records go into
// the last segment when they fit there, into a new one of their size
// otherwise, so that no record is copied again when a later message of the
// trace arrives (a trace of n messages used to be copied up to n-1 times).
type trace struct {
	sum     sampling.Trace
	hash    uint64
	recs    []byte   // the first segment
	more    [][]byte // the later segments, in order
	first   int64    // arrival of the first span, clock nanoseconds
	last    int64    // arrival of the latest span
	hasRoot bool
	decided bool
	size    int64 // bytes accounted to the budget
	pending int   // record bytes the current message will add
	groups  groupCounts

	byFirst links // all buffered traces, by first arrival
	byQuiet links // traces whose root arrived, by latest arrival, in their quiet class
	inQuiet bool
	class   uint8 // quiet class (completion.go)
	probe   bool  // its class's shorter quiet only probes it (completion.safe)
	probed  bool  // the policies dropped it on probation: its decision is a redecision

	// Learned completion (learn.go): the largest gap between arrivals
	// from the root on, and the route's slot and its generation.
	gap      int64
	route    int32
	routeGen uint32
}

// forEachRecord calls f for each buffered span record of t, in arrival
// order.
func (t *trace) forEachRecord(f func(gid uint32, raw []byte)) {
	forEachRecordIn(t.recs, f)
	for _, seg := range t.more {
		forEachRecordIn(seg, f)
	}
}

func forEachRecordIn(recs []byte, f func(gid uint32, raw []byte)) {
	for len(recs) > 0 {
		gid, n := binary.Uvarint(recs)
		l, m := binary.Uvarint(recs[n:])
		start := n + m
		f(uint32(gid), recs[start:start+int(l)])
		recs = recs[start+int(l):]
	}
}

// traceGroups is how many groups (resource and scope) a trace counts its
// records of: an SDK-shaped trace crosses 2-6 services, one group each.
const traceGroups = 6

// groupCounts counts a trace's records per group, for its first
// traceGroups groups, so that a decided trace drops its references on its
// groups without reading its records back (cold memory: about a cache miss
// per record).
type groupCounts struct {
	gid  [traceGroups]uint32
	n    [traceGroups]int32
	used uint8
	more bool // a record of a further group: release walks the records
}

func (c *groupCounts) add(gid uint32) {
	for i := range c.used {
		if c.gid[i] == gid {
			c.n[i]++
			return
		}
	}
	if c.used < traceGroups {
		c.gid[c.used], c.n[c.used] = gid, 1
		c.used++
		return
	}
	c.more = true
}

// unrefGroups drops the references t's records hold on their groups: from
// the counts, or, for a trace of more groups than they hold, walking the
// records with one call per run of records in the same group.
func (t *trace) unrefGroups(in *interner) {
	if c := &t.groups; !c.more {
		for i := range c.used {
			in.unref(c.gid[i], int(c.n[i]))
		}
		return
	}
	run, n := uint32(0), 0
	t.eachSegment(func(seg *[]byte) {
		for recs := *seg; len(recs) > 0; {
			gid, k := binary.Uvarint(recs)
			l, m := binary.Uvarint(recs[k:])
			recs = recs[k+m+int(l):]
			if uint32(gid) != run && n > 0 {
				in.unref(run, n)
				n = 0
			}
			run = uint32(gid)
			n++
		}
	})
	if n > 0 {
		in.unref(run, n)
	}
}

// recordBytes is the length of t's records, all segments together.
func (t *trace) recordBytes() int {
	n := len(t.recs)
	for _, seg := range t.more {
		n += len(seg)
	}
	return n
}

// eachSegment calls f with each of t's segments, for the arena's compaction
// to move them.
func (t *trace) eachSegment(f func(*[]byte)) {
	f(&t.recs)
	for i := range t.more {
		f(&t.more[i])
	}
}

// tail is t's last segment, where records are appended.
func (t *trace) tail() *[]byte {
	if n := len(t.more); n > 0 {
		return &t.more[n-1]
	}
	return &t.recs
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

// segmentsExact is how many later segments a trace gets at the size of the
// message that needs them; past it, a new segment also leaves room for an
// eighth of the trace's records, so that spans added one at a time (rescue)
// make O(log n) segments, not n.
const segmentsExact = 4

// appendRecord appends sp's record to t (t.pending bytes were announced),
// takes a reference on its group, and returns how much t's record memory
// (and its list of later segments, on the heap) grew, which it has added to
// t.size.
func (s *shard) appendRecord(t *trace, sp *wire.Span, gid uint32) int64 {
	var grown int64
	if t.pending > 0 {
		if seg := t.tail(); len(*seg)+t.pending > cap(*seg) {
			need := t.pending
			if len(t.more) >= segmentsExact {
				need = max(need, t.recordBytes()/8)
			}
			b := s.usage.arena.alloc(need)
			grown = int64(cap(b))
			if cap(t.recs) == 0 {
				t.recs = b // the first segment (an empty one is never kept)
			} else {
				n := cap(t.more)
				t.more = append(t.more, b)
				grown += int64(cap(t.more)-n) * segmentRefBytes
			}
		}
		t.pending = 0
	}
	seg := t.tail()
	before := cap(*seg)
	*seg = binary.AppendUvarint(*seg, uint64(gid))
	*seg = binary.AppendUvarint(*seg, uint64(len(sp.Raw)))
	*seg = append(*seg, sp.Raw...)
	s.usage.groups.ref(gid)
	t.groups.add(gid)
	// Nothing moves unless a caller appended more than it announced.
	grown += int64(cap(*seg) - before)
	t.size += grown
	return grown
}

type links struct{ prev, next *trace }

// list is an intrusive doubly linked list of traces through one of their
// links fields: byQuiet when quiet is set, else byFirst. (A flag, not a
// function value, so that at is inlined: benchmarks/README.md, "A list's
// links by a flag".)
type list struct {
	head, tail *trace
	quiet      bool
}

// at is t's links of the list.
func (l *list) at(t *trace) *links {
	if l.quiet {
		return &t.byQuiet
	}
	return &t.byFirst
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
