package store

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Recovery is what the store held at Open for a component to resume from.
type Recovery struct {
	// Undecided are the traces with spans and no decision.
	Undecided [][16]byte
	// Decided are the traces with a decision.
	Decided []Decided
	// s is the store whose hold on eviction by retention Replayed ends;
	// nil in the empty Recovery of a later Claim.
	s *Store
}

// needsReplay reports whether a component reads traces of r back from the
// store: undecided ones, or kept and not delivered.
func (r *Recovery) needsReplay() bool {
	if len(r.Undecided) > 0 {
		return true
	}
	for i := range r.Decided {
		if d := &r.Decided[i]; d.Decision.Keep && !d.Delivered {
			return true
		}
	}
	return false
}

// Replayed says that the component that claimed r has read its traces
// back from the store, and that they wait at most wait for their
// decisions (and deliveries): segments past the retention may go once
// that time is over (the writer's next tick). The traces taken in again
// are not recorded a second time: until they are decided, their spans are
// on disk only in the segments they came from, and a kill -9 after those
// went lost them (TestCrashAfterReplayAfterLongDowntime). From Open until
// then, none goes for its age, so that a start after a downtime longer
// than the retention still finds the spans of the traces that were
// undecided; a retention at most (a minute at least) from either. Safe
// to call more than once, and on a nil or empty Recovery.
func (r *Recovery) Replayed(wait time.Duration) {
	if r == nil || r.s == nil {
		return
	}
	if wait <= 0 {
		r.s.hold.Store(0)
		return
	}
	r.s.hold.Store(r.s.now() + min(int64(wait), holdFor(r.s.opts.Retention)))
}

// Decided is a trace's last decision, and whether its delivery was
// recorded after it.
type Decided struct {
	ID        [16]byte
	Decision  Decision
	Delivered bool
}

func (s *Store) snapshot() *Recovery {
	r := &Recovery{}
	for id, i := range s.idx.slots {
		switch e := s.idx.ent(i); {
		case e.flags&flagDecided != 0:
			r.Decided = append(r.Decided, Decided{ID: id, Decision: s.idx.decision(e), Delivered: e.flags&flagDelivered != 0})
		case e.nrefs > 0:
			r.Undecided = append(r.Undecided, id)
		}
	}
	return r
}

// Claim returns what the store held at Open, to the first caller only: one
// component resumes from it. Later callers get an empty Recovery.
func (s *Store) Claim() *Recovery {
	if s.claimed.Swap(true) {
		return &Recovery{}
	}
	r := s.recovery
	s.recovery = nil
	return r
}

// ReleaseRecovery gives up what the store held at Open when no component
// claimed it (the components that resume from it claim it as they start):
// Claim returns an empty Recovery from then on. It returns the numbers of
// undecided and decided traces it released, zero if it was claimed. The
// snapshot takes about 80 bytes a trace, and was held for as long as the
// store was open when nothing claimed it.
func (s *Store) ReleaseRecovery() (undecided, decided int) {
	if s.claimed.Swap(true) {
		return 0, 0
	}
	r := s.recovery
	s.recovery = nil
	s.hold.Store(0) // nothing will read it back
	if r == nil {
		return 0, 0
	}
	return len(r.Undecided), len(r.Decided)
}

// Trace is a stored trace.
type Trace struct {
	// Request is an OTLP TracesData (or ExportTraceServiceRequest) holding
	// the trace's stored spans.
	Request   []byte
	Spans     int
	Decision  Decision
	Decided   bool
	Delivered bool
	// Omitted counts the stored spans left out of Request by TraceMax's
	// bound.
	Omitted int
}

// ErrNotFound is returned for a trace the store does not hold (never seen,
// or past its retention).
var ErrNotFound = errors.New("trace not found")

// Trace returns the stored spans and decision of trace id.
func (s *Store) Trace(id [16]byte) (Trace, error) { return s.TraceMax(id, 0) }

// TraceMax is Trace with Request bounded to maxBytes (none when maxBytes
// is 0): the spans recorded first, in order, as long as they fit; the
// spans after the first that does not fit are counted in Omitted, not
// copied. So a read holds maxBytes and one block in memory, whatever the
// trace's size.
func (s *Store) TraceMax(id [16]byte, maxBytes int) (Trace, error) {
	var t Trace
	s.mu.RLock()
	e, ok := s.idx.get(id)
	if ok {
		t.Decision, t.Decided, t.Delivered = s.idx.decision(e), e.flags&flagDecided != 0, e.flags&flagDelivered != 0
	}
	s.mu.RUnlock()
	if !ok {
		return t, ErrNotFound
	}
	ids := [][16]byte{id}
	var fl filter
	in := func(x *[16]byte) bool { return *x == id }
	err := s.eachRequest(ids, in, func(req []byte) error {
		if t.Omitted > 0 { // full: count the rest
			t.Omitted += fl.count(req, in)
			return nil
		}
		if need := len(t.Request) + len(req); maxBytes > 0 && need > cap(t.Request) {
			// Grown by doubling up to maxBytes: append's growth by a
			// quarter allocated 5 times maxBytes on the way there.
			t.Request = slices.Grow(t.Request, min(max(need, 2*cap(t.Request)), maxBytes)-len(t.Request))
		}
		var n, omitted int
		t.Request, n, omitted, _ = fl.appendSpansMax(t.Request, req, in, maxBytes)
		t.Spans += n
		t.Omitted += omitted
		return nil
	})
	if t.Spans == 0 && t.Omitted == 0 && !t.Decided {
		return t, ErrNotFound
	}
	return t, err
}

// Requests calls f with OTLP requests that hold the stored spans of the
// traces ids, reading each block once, oldest first. A block that cannot be
// read (evicted meanwhile) is skipped.
func (s *Store) Requests(ids [][16]byte, f func(req []byte, spans int) error) error {
	want := make(map[[16]byte]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	in := func(id *[16]byte) bool { _, ok := want[*id]; return ok }
	var fl filter
	var out []byte
	return s.eachRequest(ids, in, func(req []byte) error {
		var n int
		var err error
		if out, n, err = fl.appendSpans(out[:0], req, in); err != nil || n == 0 {
			return nil //nolint:nilerr // a request that does not scan holds no span to return
		}
		return f(out, n)
	})
}

// eachRequest calls f with each stored request that may hold spans of the
// traces ids (in reports whether an ID is one of them), reading each block
// once, oldest first. A block that cannot be read (evicted meanwhile) is
// skipped. req is valid during the call only.
func (s *Store) eachRequest(ids [][16]byte, in func(id *[16]byte) bool, f func(req []byte) error) error {
	var refs []ref
	s.mu.RLock()
	for _, id := range ids {
		if e, ok := s.idx.get(id); ok {
			refs = s.idx.appendRefs(refs, id, e)
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	refs = slices.Compact(refs)
	blocks := refs
	s.mu.RUnlock()

	visit := func(r *Record) error {
		if r.Kind != KindSpans || (!r.IDsOmitted && !slices.ContainsFunc(r.IDs, func(id [16]byte) bool { return in(&id) })) {
			return nil
		}
		if err := f(r.Request); err != nil {
			return &visitError{err}
		}
		return nil
	}
	var raw, comp []byte
	var file *os.File
	defer func() {
		if file != nil {
			_ = file.Close()
		}
	}()
	fileSeg := uint32(0)
	for _, b := range blocks {
		if file == nil || fileSeg != b.seg {
			if file != nil {
				_ = file.Close()
			}
			var err error
			if file, err = os.Open(filepath.Join(s.opts.Dir, segName(b.seg))); err != nil {
				file = nil
				continue // evicted meanwhile
			}
			fileSeg = b.seg
		}
		var err error
		if comp, raw, err = s.readBlockAt(file, int64(b.off), comp, raw); err != nil {
			continue
		}
		if _, err := ParseRecords(raw, visit); err != nil && !isParseError(err) {
			return errors.Unwrap(err)
		}
	}
	return nil
}

// readBlockAt reads and opens the block at off in f.
func (s *Store) readBlockAt(f *os.File, off int64, comp, raw []byte) ([]byte, []byte, error) {
	var hdr [blockHeader]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return comp, raw, fmt.Errorf("read block header: %w", err)
	}
	b, err := parseBlockHeader(hdr[:])
	if err != nil {
		return comp, raw, err
	}
	comp = slices.Grow(comp[:0], b.compLen)[:b.compLen]
	if _, err := f.ReadAt(comp, off+blockHeader); err != nil && !errors.Is(err, io.EOF) {
		return comp, raw, fmt.Errorf("read block: %w", err)
	}
	raw, err = s.codec.open(raw, b, comp)
	return comp, raw, err
}

// isParseError tells a record parse error from one f returned.
func isParseError(err error) bool {
	var fe *visitError
	return !errors.As(err, &fe)
}

// visitError wraps what a Requests callback returned.
type visitError struct{ err error }

func (e *visitError) Error() string { return e.err.Error() }
func (e *visitError) Unwrap() error { return e.err }
