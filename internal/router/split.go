package router

import (
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/bufpool"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/wire"
)

// part is the OTLP request for one member: an encoded TracesData (which is
// also an encoded ExportTraceServiceRequest) holding spans spans.
type part struct {
	member int
	data   []byte
	spans  int
	// rerouted counts the spans of traces whose owner was down.
	rerouted int
}

// splitter splits an encoded TracesData by the member each span's trace goes
// to. It keeps its buffers between calls; one splitter serves one call at a
// time.
type splitter struct {
	batch    wire.Batch
	byMember [][]int32 // span indexes, per member
	rerouted []int     // per member
	spans    []byte    // span bodies of one scope run, for AppendResourceSpans
	ends     []int
	prefix   []byte // put at the head of each part (Settings.Prefix)
	// maxBytes caps each part's size (Settings.MaxRequestBytes; 0: no
	// cap): a member's share above it is cut in several parts.
	maxBytes int
	cuts     []cut
}

// targets chooses, per trace, the member its spans go to.
type targets struct {
	ring *ring.Ring
	// down reports whether a member is marked down; nil when none is.
	down func(member int) bool
	// strict makes target report -1 when every member is down; otherwise
	// the owner is used then, and its queue holds the spans.
	strict bool
	// prefix is put at the head of each part.
	prefix []byte
	// direct: a failover, whose parts go straight to a member whose queue
	// is closed as the router shuts down (Router.sendParts).
	direct bool
	// next, when set, chooses the member of a trace whose owner is down
	// in place of the next member up in hash order (RouteNowVia): a
	// member index, -1 for none.
	next func(h uint64) int
}

// target returns the member for hash h and whether it is not the owner.
func (t *targets) target(h uint64) (member int, rerouted bool) {
	owner := t.ring.Owner(h)
	if t.down == nil || !t.down(owner) {
		return owner, false
	}
	var next int
	if t.next != nil {
		next = t.next(h)
	} else {
		next = t.ring.Next(h, t.down)
	}
	if next < 0 {
		if t.strict {
			return -1, false
		}
		return owner, false
	}
	return next, true
}

// split scans buf and returns one part per member that gets spans. ok is
// false when t is strict and a span has no member up; parts is then nil. The
// parts' data is newly allocated and owned by the caller.
func (s *splitter) split(buf []byte, t *targets) (parts []part, ok bool, err error) {
	s.prefix = t.prefix
	s.batch.Reset()
	// Spans with bad IDs are not sent: every gateway refuses them. A
	// request of empty spans then allocates nothing (wire.Batch).
	s.batch.SkipInvalid = true
	if err := wire.Scan(buf, &s.batch); err != nil {
		return nil, false, err
	}
	n := t.ring.Len()
	for len(s.byMember) < n {
		s.byMember = append(s.byMember, nil)
		s.rerouted = append(s.rerouted, 0)
	}
	for i := range n {
		s.byMember[i] = s.byMember[i][:0]
		s.rerouted[i] = 0
	}
	var lastID [16]byte
	last, lastRerouted := -1, false
	for i := range s.batch.Spans {
		sp := &s.batch.Spans[i]
		// Spans of one trace often come together: hash each run once.
		if last < 0 || sp.TraceID != lastID {
			lastID = sp.TraceID
			last, lastRerouted = t.target(ring.Hash(sp.TraceID))
			if last < 0 {
				return nil, false, nil
			}
		}
		s.byMember[last] = append(s.byMember[last], int32(i))
		if lastRerouted {
			s.rerouted[last]++
		}
	}
	for m := range n {
		if idx := s.byMember[m]; len(idx) > 0 {
			parts = s.appendParts(parts, m, idx)
		}
	}
	return parts, true, nil
}

// appendParts appends to parts member m's share, the spans idx: one part,
// or, when its encoding would take more than s.maxBytes, as many as it
// takes to keep each part within it (a span bigger by itself is a part of
// its own, the only part above s.maxBytes). The parts are in idx's order,
// which keeps the order of the spans of each trace.
func (s *splitter) appendParts(parts []part, m int, idx []int32) []part {
	data := s.encode(nil, idx)
	if s.maxBytes <= 0 || len(data) <= s.maxBytes {
		return append(parts, part{member: m, data: data, spans: len(idx), rerouted: s.rerouted[m]})
	}
	// Rare, and the single encoding above is the common case's cost:
	// encode again, in pieces.
	putBuffer(data)
	rerouted, start := s.rerouted[m], 0
	for _, c := range s.cut(idx, 0, s.maxBytes) {
		n := c.end - start
		// Which spans were rerouted is not kept: the count goes to the
		// first parts.
		rr := min(rerouted, n)
		rerouted -= rr
		parts = append(parts, part{member: m, data: s.encode(nil, idx[start:c.end]), spans: n, rerouted: rr})
		start = c.end
	}
	return parts
}

// cut is the end (exclusive) of one piece of a span index list, and the
// size of the piece's encoding.
type cut struct{ end, size int }

// cut divides idx into consecutive pieces of at most maxSpans spans (0:
// any) whose encoding by encode (s.prefix included) takes at most maxBytes
// bytes (0: any), each piece as long as these allow; a span whose encoding
// alone is bigger than maxBytes is a piece of its own. It returns the
// pieces' ends and exact sizes, in s.cuts.
func (s *splitter) cut(idx []int32, maxSpans, maxBytes int) []cut {
	spans, scopes := s.batch.Spans, s.batch.Scopes
	s.cuts = s.cuts[:0]
	base := len(s.prefix)
	start := 0
	// The piece begun at start: closed is the size of its scope runs but
	// the last; run and runSpans are the last run's scope and the size
	// of its spans' fields.
	closed, run, runSpans := 0, int32(-1), 0
	size := base
	for i, x := range idx {
		sp := &spans[x]
		f := bytesField(2, len(sp.Raw))
		next := base + closed + wire.ResourceSpansSize(&scopes[sp.Scope], f)
		if sp.Scope == run {
			next = base + closed + wire.ResourceSpansSize(&scopes[run], runSpans+f)
		} else if run >= 0 {
			next += wire.ResourceSpansSize(&scopes[run], runSpans)
		}
		if i > start && (maxSpans > 0 && i-start >= maxSpans || maxBytes > 0 && next > maxBytes) {
			s.cuts = append(s.cuts, cut{end: i, size: size})
			start, closed, run, runSpans = i, 0, -1, 0
			next = base + wire.ResourceSpansSize(&scopes[sp.Scope], f)
		}
		if sp.Scope != run {
			if run >= 0 {
				closed += wire.ResourceSpansSize(&scopes[run], runSpans)
			}
			run, runSpans = sp.Scope, 0
		}
		runSpans += f
		size = next
	}
	if start < len(idx) {
		s.cuts = append(s.cuts, cut{end: len(idx), size: size})
	}
	return s.cuts
}

// bytesField is the size of a length-delimited field numbered num holding
// n bytes.
func bytesField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// encode appends to dst the TracesData holding the spans idx of s.batch, in
// order, each under its resource and scope. Spans of one scope are
// consecutive in a scanned batch, hence in idx too: each run becomes one
// ResourceSpans.
func (s *splitter) encode(dst []byte, idx []int32) []byte {
	spans, scopes := s.batch.Spans, s.batch.Scopes
	if dst == nil {
		size := 0
		for _, i := range idx {
			size += len(spans[i].Raw) + 4
		}
		dst = append(getBuffer(size+size/8+64+len(s.prefix)), s.prefix...)
	}
	for start := 0; start < len(idx); {
		sc := spans[idx[start]].Scope
		s.spans, s.ends = s.spans[:0], s.ends[:0]
		end := start
		for ; end < len(idx) && spans[idx[end]].Scope == sc; end++ {
			s.spans = append(s.spans, spans[idx[end]].Raw...)
			s.ends = append(s.ends, len(s.spans))
		}
		dst = wire.AppendResourceSpans(dst, &scopes[sc], s.spans, s.ends)
		start = end
	}
	return dst
}

// partitioners serve Partition.
var partitioners = sync.Pool{New: func() any { return new(splitter) }}

// Partition splits buf, an encoded TracesData or ExportTraceServiceRequest,
// into the spans of the traces mine accepts (by ring.Hash of the trace ID)
// and the others, each encoded as a TracesData, nil when it holds no span.
// When every span is mine, own is buf itself, not a copy. A gateway's
// cluster block sorts what it receives into its own traces and those it
// forwards with it.
func Partition(buf []byte, mine func(h uint64) bool) (own, other []byte, ownSpans, otherSpans int, err error) {
	s := partitioners.Get().(*splitter)
	defer partitioners.Put(s)
	s.prefix = nil
	s.batch.Reset()
	s.batch.SkipInvalid = true // a request of empty spans allocates nothing
	if err := wire.Scan(buf, &s.batch); err != nil {
		return nil, nil, 0, 0, err
	}
	if s.batch.Invalid > 0 {
		// Spans with bad IDs: the whole request stays here, for the
		// buffer to refuse those (INVALID_ARGUMENT, with the count) and
		// keep the rest, whoever owns it.
		spans := len(s.batch.Spans)
		s.batch.Reset()
		return buf, nil, spans, 0, nil
	}
	for len(s.byMember) < 2 {
		s.byMember = append(s.byMember, nil)
	}
	mineIdx, others := s.byMember[0][:0], s.byMember[1][:0]
	var lastID [16]byte
	last := false
	for i := range s.batch.Spans {
		sp := &s.batch.Spans[i]
		if i == 0 || sp.TraceID != lastID {
			lastID, last = sp.TraceID, mine(ring.Hash(sp.TraceID))
		}
		if last {
			mineIdx = append(mineIdx, int32(i))
		} else {
			others = append(others, int32(i))
		}
	}
	s.byMember[0], s.byMember[1] = mineIdx, others
	switch {
	case len(others) == 0:
		own = buf
	case len(mineIdx) > 0:
		own = s.encode(nil, mineIdx)
	}
	if len(others) > 0 {
		other = s.encode(nil, others)
	}
	s.batch.Reset() // do not keep buf reachable
	return own, other, len(mineIdx), len(others), nil
}

// partBuffers recycles the requests' bytes once a member has sent them: the
// agent's allocation rate, hence its GC work, is mostly these bytes. Its
// tiers are powers of two, so that a buffer back from a part of one size
// serves the next part of about that size (one pool of mixed sizes handed
// out a buffer too small for half the parts, which were then allocated,
// and cleared, anew).
var partBuffers bufpool.Pool

// getBuffer returns an empty buffer of at least size bytes of capacity.
func getBuffer(size int) []byte {
	return (*partBuffers.Get(size))[:0]
}

// putBuffer recycles b, which nothing may use afterwards. A buffer that did
// not come from getBuffer, or that append outgrew, is left to the GC.
func putBuffer(b []byte) {
	partBuffers.Put(&b)
}
