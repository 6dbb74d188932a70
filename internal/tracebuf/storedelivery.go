package tracebuf

import (
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/wire"
)

// A shard's deliveries to the store: which traces the delivery record of
// the requests cut from its output batch covers.

// outDelivery is the delivery of the requests cut from a shard's output
// batch (flushOut), recorded once they all went, for the traces of the
// requests the next consumer accepted and of none it did not: a trace's
// spans may fill more than one request (late spans past
// output.batch_max_spans, a kept trace and its late spans). Recorded as
// each request was accepted, the first one's record covered the trace
// while the next was refused and retried, and a kill -9 then lost the
// spans of the next (TestTraceInTwoCutsSurvivesCrash). A kill -9 during
// the flush sends its accepted traces again after the restart.
type outDelivery struct {
	st *store.Store
	d  *store.Delivery
	// waiting are the traces with spans in the open request, which stays
	// in the batch (sorted): they are not delivered until it goes. The
	// late spans of one trace in one request that fill the open request
	// past output.batch_max_spans are cut in two; the first part's
	// delivery covered the second, and a kill -9 before it went lost it
	// (TestLateSpansCutInTwoSurviveCrash).
	waiting [][16]byte
	// sends are the traces a keep or a rescue is handing on from the
	// store: left out too (storedSends).
	sends *storedSends
	// done are the traces of the requests the next consumer accepted,
	// failed those of the requests it did not; unknown is set when a
	// request's traces are not known (it did not scan): nothing is
	// recorded.
	done, failed [][16]byte
	unknown      bool
}

// beginDelivery begins the delivery of the requests cut from the shard's
// output batch, before the first is handed on: it covers the spans
// recorded until then, not a late span recorded while the next
// consumer's call (or its retries) is under way, nor the traces of a
// request recorded before it that the shard has not taken in yet
// (storequeued.go). It is nil without a store.
func (s *shard) beginDelivery() *outDelivery {
	h := s.deps.store
	if h == nil || h.replaying.Load() {
		// While Replay takes the stored traces in again, one stored
		// request at a time, a trace's requests not read back yet have
		// records older than any mark: a delivery of its first ones
		// covered them all, and a kill -9 before the rest went lost them
		// (TestReplayedRequestQueuedForShardSurvivesCrash). Nothing else
		// is taken in meanwhile: nothing is recorded delivered, and the
		// traces delivered are sent again after a restart. Once Replay is
		// over, the requests it queued are noted (recordSpans).
		return nil
	}
	od := s.beginQueued(h)
	if o := &s.out; o.open.spans > 0 {
		b := &s.outScan
		b.Reset()
		if err := wire.Scan(o.buf[o.open.at:], b); err != nil {
			// Encoded here from scanned spans: cannot happen. Nothing
			// is recorded: the traces are sent again after a restart.
			s.deps.logger.Error("Kept spans' delivery not recorded: the output request does not scan", zap.Error(err))
			clear(s.queuedSnap)
			s.queuedSnap = s.queuedSnap[:0]
			return nil
		}
		od.waiting = batchTraceIDs(b)
		b.Reset()
	}
	s.leaveOutQueued(od)
	return od
}

// handed notes the outcome of a request of traces ids handed on: err is
// the next consumer's.
func (od *outDelivery) handed(ids [][16]byte, err error) {
	switch {
	case od == nil:
	case err == nil:
		od.done = append(od.done, ids...)
	default:
		od.failed = append(od.failed, ids...)
	}
}

// finish records the delivery of the traces of the requests accepted, but
// those with spans in a request not accepted, those waiting in the open
// request, and those whose stored spans a keep or a rescue is handing on.
func (od *outDelivery) finish() {
	if od == nil || od.unknown || len(od.done) == 0 {
		return
	}
	ids := sortedIDs(od.done)
	if len(od.failed) > 0 {
		ids = without(ids, sortedIDs(od.failed))
	}
	ids = without(ids, od.waiting)
	if ids = od.sends.without(ids); len(ids) > 0 {
		od.st.AppendDelivered(od.d, ids)
	}
}

// without returns ids without those in leave (both sorted), in ids's
// memory.
func without(ids, leave [][16]byte) [][16]byte {
	if len(leave) == 0 {
		return ids
	}
	kept := ids[:0]
	for _, id := range ids {
		if _, found := slices.BinarySearchFunc(leave, id, compareIDs); !found {
			kept = append(kept, id)
		}
	}
	return kept
}

// The requests a shard has not taken in yet, for its deliveries to the
// store. A request's spans are recorded when it is admitted (recordSpans),
// before its shards take it in: it may still wait in a shard's queue, or
// in the Ingest call that hands it on, when the shard begins to hand on its
// output batch (beginDelivery). The delivery's mark is then after the
// request's spans record, though its late spans of a kept trace are not in
// the batch; a delivery record of that trace covered them, and a kill -9
// before their own delivery lost them (TestLateSpanQueuedForShardSurvivesCrash).
// The shard leaves the traces of those requests out of the delivery.

// queuedReqs are the requests recorded to the store and routed to one
// shard that the shard has not taken in yet.
type queuedReqs struct {
	mu   sync.Mutex
	reqs []*request
	_    [32]byte // one cache line per shard: Ingest calls add to several
}

// add notes that req, recorded, goes to the shard. Called before the
// spans record is queued to the store.
func (q *queuedReqs) add(req *request) {
	q.mu.Lock()
	q.reqs = append(q.reqs, req)
	q.mu.Unlock()
}

// remove notes that the shard took req in. The oldest request is nearly
// always the one taken in, at the front: the search is short.
func (q *queuedReqs) remove(req *request) {
	q.mu.Lock()
	for i, r := range q.reqs {
		if r == req {
			last := len(q.reqs) - 1
			q.reqs[i] = q.reqs[last]
			q.reqs[last] = nil
			q.reqs = q.reqs[:last]
			break
		}
	}
	q.mu.Unlock()
}

// noteQueued notes req for every shard it goes to; recordSpans calls it
// before it queues req's spans record.
func (h *storeHook) noteQueued(req *request) {
	for sh := range req.per {
		if len(req.per[sh]) > 0 {
			h.queued[sh].add(req)
		}
	}
	req.noted = true
}

// takenIn notes that shard s took req in (shard.ingest, under its lock).
func (s *shard) takenIn(req *request) {
	if req.noted {
		s.deps.store.queued[s.id].remove(req)
	}
}

// queuedTraceIDs appends to ids the IDs of the traces of the requests
// routed to s that s has not taken in yet. It is called under s.mu, so
// none of them is taken in (nor released) meanwhile. snap is what the
// queue held once the delivery began.
func (s *shard) queuedTraceIDs(ids [][16]byte, snap []*request) [][16]byte {
	for _, req := range snap {
		spans := req.batch.Spans
		for _, i := range req.per[s.id] {
			if id := spans[i].TraceID; len(ids) == 0 || ids[len(ids)-1] != id {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// beginQueued begins the delivery of the store, and returns the requests
// routed to s not taken in then, in s.queuedSnap. It holds the queue's lock
// while it begins, so that a request noted after it has its spans record
// after the delivery's mark, and one noted before is in the snapshot.
func (s *shard) beginQueued(h *storeHook) *outDelivery {
	q := &h.queued[s.id]
	q.mu.Lock()
	od := &outDelivery{st: h.st, d: h.st.BeginDelivery(), sends: &h.sends}
	s.queuedSnap = append(s.queuedSnap[:0], q.reqs...)
	q.mu.Unlock()
	return od
}

// leaveOutQueued adds to od.waiting the traces of s.queuedSnap, and
// forgets the snapshot.
func (s *shard) leaveOutQueued(od *outDelivery) {
	if len(s.queuedSnap) == 0 {
		return
	}
	od.waiting = sortedIDs(s.queuedTraceIDs(od.waiting, s.queuedSnap))
	clear(s.queuedSnap)
	s.queuedSnap = s.queuedSnap[:0]
}
