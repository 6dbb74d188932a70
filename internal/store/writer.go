package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// writer is the state only the writer goroutine touches (and Open, before it
// starts).
type writer struct {
	seg      *os.File // the segment being written, nil until the first block
	segBytes int64    // a segment is closed once it holds this much
	seq      uint64
	raw      []byte // the framed records of a batch
	blk      []byte // their block
	scratch  []byte
	names    []string // decisionsBody's scratch
	items    []item
	recs     []Record
	// lastSpans is the sequence of the last spans record framed, and
	// batchSpans the spans items of the batch being framed, with theirs:
	// a delivery looks at them for a late span recorded while it was
	// under way (spansSince).
	lastSpans  uint64
	batchSpans []batchSpan
	failing    bool // the last write failed: drop until the next tick
	writeFile  func(f *os.File, b []byte) (int, error)
	// lastNum is the highest segment number used: a segment after every
	// one was evicted does not take a number again.
	lastNum uint32
}

// batchSpan is a spans item of the batch being framed: its position in
// writer.items and its record's sequence.
type batchSpan struct {
	item int
	seq  uint64
}

func (w *writer) close() error {
	var errs []error
	if w.seg != nil {
		errs = append(errs, w.seg.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) run() {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case p := <-s.in:
			s.writeBatch(take(p))
		case <-tick.C:
			s.w.failing = false
			s.enforce()
			s.retireWritten()
		case <-s.stop:
			for {
				select {
				case p := <-s.in:
					s.writeBatch(take(p))
					continue
				default:
				}
				break
			}
			return
		}
	}
}

// writeBatch frames it and whatever else is queued, compresses them into
// one block and appends the block to the current segment in one write,
// then indexes the records. The segment is the write-ahead log: each
// record is copied once (framing) and compressed once.
func (s *Store) writeBatch(first item) {
	w := &s.w
	w.items, w.recs = append(w.items[:0], first), w.recs[:0]
	for size := first.size(); size < 4<<20; {
		select {
		case p := <-s.in:
			w.items = append(w.items, take(p))
			size += w.items[len(w.items)-1].size()
			continue
		default:
		}
		break
	}
	var syncs []chan struct{}
	defer func() {
		for _, c := range syncs {
			close(c)
		}
	}()
	for i := range w.items {
		if it := &w.items[i]; it.sync == nil {
			s.queued.Add(-it.held())
		}
	}
	if w.failing {
		s.stats.Dropped.Add(int64(len(w.items) - countSyncs(w.items)))
		syncs = collectSyncs(w.items, syncs)
		for i := range w.items {
			w.items[i].release()
		}
		clear(w.items)
		return
	}
	raw, maxTime := w.raw[:0], int64(0)
	// When a request AppendSpans copied (framed) heads the block and the
	// block's other records fit in the room behind it, they go there, so
	// that the request is not copied a second time: its decisions, queued
	// by the same Ingest call, follow it in nearly every block. (Several
	// requests go into w.raw: growing the copy would copy it anyway.)
	head := w.items[0].framed && fitsBehind(w.items)
	w.batchSpans = w.batchSpans[:0]
	for i := range w.items {
		it := &w.items[i]
		switch {
		case it.sync != nil:
			syncs = append(syncs, it.sync)
			continue
		case it.kind == kindBegin:
			it.delivery.mark, it.delivery.begun = w.seq, true
			continue
		case it.kind == KindDelivered && !it.delivery.begun:
			s.stats.Dropped.Add(1) // its beginning was dropped: it covers nothing known
			continue
		}
		w.seq++
		switch it.kind {
		case KindSpans:
			w.lastSpans = w.seq
			w.batchSpans = append(w.batchSpans, batchSpan{i, w.seq})
			switch {
			case head && i == 0:
				sealFrame(it.req, w.seq)
				raw = it.req
			case it.framed:
				sealFrame(it.req, w.seq)
				raw = append(raw, it.req...)
			default:
				start := len(raw)
				raw = appendSpansFrame(raw, it.t, it.req)
				sealFrame(raw[start:], w.seq)
			}
		case KindDecision:
			if it.decs != nil {
				// One record for the batch (kind 5, or 7 with an rv),
				// indexed decision by decision.
				kind, withRV := kindDecisions, anyRV(it.decs)
				if withRV {
					kind = kindDecisionsRV
				}
				w.scratch, w.names = decisionsBody(w.scratch[:0], it.ids, it.decs, w.names, withRV)
				raw = appendFrame(raw, kind, w.seq, it.t, w.scratch)
				for k := range it.decs {
					w.recs = append(w.recs, Record{Kind: it.kind, IDs: it.ids[k : k+1], Decision: it.decs[k]})
				}
				maxTime = max(maxTime, it.t)
				continue
			}
			w.scratch = decisionBody(w.scratch[:0], it.ids[0], it.dec)
			raw = appendFrame(raw, it.kind, w.seq, it.t, w.scratch)
		case KindDelivered:
			// Kind 3 unless a late span of one of the traces was recorded
			// after the delivery began: then kind 8, with the mark.
			if mark := it.delivery.mark; s.spansSince(i, mark) {
				w.scratch = deliveredMarkBody(w.scratch[:0], mark, it.ids)
				raw = appendFrame(raw, kindDeliveredMark, w.seq, it.t, w.scratch)
				w.recs = append(w.recs, Record{Kind: it.kind, Seq: w.seq, IDs: it.ids, Mark: mark, Marked: true})
				maxTime = max(maxTime, it.t)
				continue
			}
			w.scratch = deliveredBody(w.scratch[:0], it.ids)
			raw = appendFrame(raw, it.kind, w.seq, it.t, w.scratch)
		}
		w.recs = append(w.recs, Record{Kind: it.kind, Seq: w.seq, IDs: it.ids, Decision: it.dec})
		maxTime = max(maxTime, it.t)
	}
	if len(raw) > 0 {
		s.appendBlock(raw, maxTime)
	}
	if head {
		w.items[0].req = raw // the copy, with the records behind it
	} else {
		w.raw = raw // not an item's copy
	}
	for i := range w.items {
		w.items[i].release()
	}
	clear(w.items) // do not keep the requests reachable
	clear(w.recs)
	if cap(w.raw) > 8<<20 {
		w.raw, w.blk = nil, nil
	}
}

// spansSince reports whether a trace of the delivered item w.items[i] has
// a spans record newer than mark: indexed (an earlier block), or framed
// earlier in this batch. The index is read without the lock: only the
// writer changes it.
func (s *Store) spansSince(i int, mark uint64) bool {
	w := &s.w
	if w.lastSpans <= mark {
		return false // no spans record at all since the delivery began
	}
	ids := w.items[i].ids
	for _, id := range ids {
		if e, ok := s.idx.get(id); ok && spansAfter(e, mark) {
			return true
		}
	}
	sorted := slices.IsSortedFunc(ids, compareIDs)
	for _, b := range w.batchSpans {
		if b.seq > mark && anyOf(w.items[b.item].ids, ids, sorted) {
			return true
		}
	}
	return false
}

func compareIDs(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) }

// anyOf reports whether some ID of a is in ids (sorted: by compareIDs). A
// search of unsorted ids longer than a few reports true rather than take
// a quadratic time: a delivery record with a mark is as correct, only
// unreadable by versions before it.
func anyOf(a, ids [][16]byte, sorted bool) bool {
	if !sorted && len(a)*len(ids) > 1<<12 {
		return true
	}
	for _, id := range a {
		if sorted {
			if _, ok := slices.BinarySearchFunc(ids, id, compareIDs); ok {
				return true
			}
		} else if slices.Contains(ids, id) {
			return true
		}
	}
	return false
}

// appendBlock compresses raw (the framed records w.recs) into a block at
// the end of the current segment and indexes the records.
func (s *Store) appendBlock(raw []byte, maxTime int64) {
	w := &s.w
	if w.seg == nil || s.segs[len(s.segs)-1].size >= w.segBytes {
		if err := s.newSegment(); err != nil {
			s.writeFailed("new segment", err, len(w.recs))
			return
		}
	}
	cur := s.segs[len(s.segs)-1]
	w.blk = s.codec.seal(w.blk[:0], raw, w.seq, maxTime)
	if err := s.write(w.seg, w.blk); err != nil {
		s.writeFailed(segName(cur.num), err, len(w.recs))
		// Cut off a partial write, so that the next block follows whole ones.
		_ = w.seg.Truncate(cur.size)
		return
	}
	s.stats.BlockBytes.Add(int64(len(w.blk)))
	s.stats.DiskBytes.Add(int64(len(w.blk)))
	at := ref{seg: cur.num, off: uint32(cur.size)}
	s.mu.Lock()
	for i := range w.recs {
		s.idx.apply(&w.recs[i], at)
	}
	cur.size += int64(len(w.blk))
	cur.maxTime = max(cur.maxTime, maxTime)
	s.stats.Traces.Store(int64(s.idx.len()))
	s.mu.Unlock()
	if s.stats.DiskBytes.Load() > s.opts.MaxBytes {
		s.enforce()
	}
}

// fitsBehind reports whether the framed records of items[1:] fit in the
// room left behind items[0]'s copy (blockTail).
func fitsBehind(items []item) bool {
	room := int64(cap(items[0].req) - len(items[0].req))
	for i := 1; i < len(items) && room >= 0; i++ {
		if items[i].sync == nil {
			room -= items[i].size()
		}
	}
	return room >= 0
}

func countSyncs(items []item) int {
	n := 0
	for i := range items {
		if items[i].sync != nil {
			n++
		}
	}
	return n
}

func collectSyncs(items []item, syncs []chan struct{}) []chan struct{} {
	for i := range items {
		if items[i].sync != nil {
			syncs = append(syncs, items[i].sync)
		}
	}
	return syncs
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// write writes b to f, evicting the oldest segment and trying once more
// when the disk is full.
func (s *Store) write(f *os.File, b []byte) error {
	wf := s.w.writeFile
	if wf == nil {
		wf = (*os.File).Write
	}
	n, err := wf(f, b)
	if err != nil && errors.Is(err, syscall.ENOSPC) && s.evictOldest("disk full") {
		if n > 0 {
			return fmt.Errorf("partial write of %d bytes: %w", n, err)
		}
		_, err = wf(f, b)
	}
	return err
}

// writeFailed counts and logs a failed write; records are dropped until
// the next tick.
func (s *Store) writeFailed(what string, err error, records int) {
	s.stats.WriteErrors.Add(1)
	s.stats.Dropped.Add(int64(records))
	if !s.w.failing {
		s.log.Error("tailsift store: write failed, not recording for a second",
			zap.String("file", what), zap.Int("records_dropped", records), zap.Error(err))
	}
	s.w.failing = true
}

// newSegment starts the next segment file.
func (s *Store) newSegment() error {
	s.w.lastNum++ // recover set it to the highest number found
	num := s.w.lastNum
	f, err := os.OpenFile(filepath.Join(s.opts.Dir, segName(num)), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if s.w.seg != nil {
		_ = s.w.seg.Close()
	}
	s.w.seg = f
	s.mu.Lock()
	s.segs = append(s.segs, &segment{num: num})
	s.mu.Unlock()
	return nil
}

// enforce evicts the segments older than the retention, then the oldest
// ones while the store is over max_bytes.
func (s *Store) enforce() {
	now := s.now()
	s.dateNoLaterThan(now)
	cutoff := now - int64(s.opts.Retention)
	for len(s.segs) > 1 && s.segs[0].maxTime < cutoff && !s.retentionHeld(now) {
		s.evictOldest("retention")
	}
	for s.stats.DiskBytes.Load() > s.opts.MaxBytes && s.evictOldest("max_bytes") {
	}
}

// dateNoLaterThan dates now the segments whose newest record is dated
// after now. A clock stepped back leaves them in the future, and the oldest
// held every later segment on disk until the clock caught up (retention
// evicts from the oldest): an hour's step held them for the hour and the
// retention. Their records count as written now, so that they go the
// retention after the step was seen (the writer's next tick).
func (s *Store) dateNoLaterThan(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		seg.maxTime = min(seg.maxTime, now)
	}
}

// retireWritten closes the segment being written, and evicts it, once it
// is the only one left and all it holds is past the retention: segments
// rotate by size, and enforce never evicts the last one, so that at a low
// rate a segment held its spans for days, served by the API past the
// retention. The next block starts a new segment. (Only the writer's tick
// calls it: at Open, the newest segment recovered stays, whatever its age,
// for the components to take their traces back.)
func (s *Store) retireWritten() {
	if len(s.segs) != 1 || s.w.seg == nil || s.retentionHeld(s.now()) {
		return
	}
	if last := s.segs[0]; last.size == 0 || last.maxTime >= s.now()-int64(s.opts.Retention) {
		return
	}
	_ = s.w.seg.Close()
	s.w.seg = nil
	s.evictFirst("retention")
}

// evictOldest deletes the oldest segment, unless it is the last one (the
// one being written, or the newest recovered), and reports whether it did.
func (s *Store) evictOldest(why string) bool {
	if len(s.segs) <= 1 {
		return false
	}
	s.evictFirst(why)
	return true
}

// evictFirst deletes the oldest segment.
func (s *Store) evictFirst(why string) {
	old := s.segs[0]
	s.mu.Lock()
	s.segs = s.segs[1:]
	s.idx.evict(old.num)
	s.stats.Traces.Store(int64(s.idx.len()))
	s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.opts.Dir, segName(old.num))); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("tailsift store: cannot remove segment", zap.Error(err))
	}
	s.stats.EvictedBytes.Add(old.size)
	s.stats.DiskBytes.Add(-old.size)
	if why != "retention" {
		s.log.Warn("tailsift store: evicted the oldest segment before its retention",
			zap.String("reason", why), zap.String("segment", segName(old.num)), zap.Int64("bytes", old.size))
	}
}
