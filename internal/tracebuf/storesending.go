package tracebuf

import (
	"sync"
	"sync/atomic"
)

// storedSends are the traces whose stored spans a retroactive keep or a
// rescue hands on (sendStored), or failed to: the shards leave them out of
// their delivery records until that send went. Such a keep marks the
// trace kept for the shards before it hands the stored spans on, so that
// later spans follow it; a late span that went out through its shard while
// the keep's call was under way was recorded delivered, with a mark past
// every stored span: the record covered the stored spans not handed on,
// and after a kill -9 the trace read as delivered and none of them went
// again (TestLateSpanDuringRetroKeepSurvivesCrash). A keep or rescue that
// failed stays here, so that a later late span does not mark the trace
// delivered either: the keep may be asked again, and a restart sends the
// trace. A restart empties it: the store reads such a trace as kept and
// not delivered, and Replay sends it whole.
type storedSends struct {
	n  atomic.Int32 // len(ids): the shards' check costs a load while none is under way
	mu sync.Mutex
	// ids counts each trace's sends under way; a failed one counts -1
	// (failedMark) once none is.
	ids map[[16]byte]int32
	// failed lists the traces whose send failed, oldest first: past
	// maxFailedSends, the oldest is forgotten (its trace may then be
	// recorded delivered by a late span's delivery, as before).
	failed [][16]byte
}

// maxFailedSends bounds the failed sends remembered (about 40 bytes each).
const maxFailedSends = 4096

const failedMark = -1

// begin notes that a send of trace id's stored spans begins. Call it
// before the trace is marked kept for the shards.
func (s *storedSends) begin(id [16]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = make(map[[16]byte]int32)
	}
	s.ids[id] = max(s.ids[id], 0) + 1
	s.n.Store(int32(len(s.ids)))
}

// end notes that a send of trace id's stored spans ended, delivered or
// not.
func (s *storedSends) end(id [16]byte, delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.ids[id]
	switch {
	case !ok || n <= 0:
		return
	case n > 1:
		s.ids[id] = n - 1
		return
	case delivered:
		delete(s.ids, id)
	default:
		s.ids[id] = failedMark
		s.failed = append(s.failed, id)
		if len(s.failed) > maxFailedSends {
			old := s.failed[0]
			s.failed = s.failed[1:]
			if s.ids[old] == failedMark {
				delete(s.ids, old)
			}
		}
	}
	s.n.Store(int32(len(s.ids)))
}

// without returns ids (sorted) without the traces whose stored spans are
// being handed on, or failed to be.
func (s *storedSends) without(ids [][16]byte) [][16]byte {
	if s.n.Load() == 0 {
		return ids
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := ids[:0]
	for _, id := range ids {
		if _, ok := s.ids[id]; !ok {
			kept = append(kept, id)
		}
	}
	return kept
}
