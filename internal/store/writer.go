package store

import (
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
	wal       *os.File
	walSize   int64
	seg       *os.File // the segment being written, nil until the first seal
	segBytes  int64    // a segment is closed once it holds this much
	seq       uint64
	tailSince time.Time // when the tail's first record was written
	tailMax   int64     // newest record time in the tail
	blk       []byte
	scratch   []byte
	items     []item
	recs      []Record
	failing   bool // the last write failed: drop until the next tick
	writeFile func(f *os.File, b []byte) (int, error)
}

func (w *writer) close() error {
	var errs []error
	if w.seg != nil {
		errs = append(errs, w.seg.Close())
	}
	if w.wal != nil {
		errs = append(errs, w.wal.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) run() {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case it := <-s.in:
			s.writeBatch(it)
		case <-tick.C:
			s.w.failing = false
			if len(s.tail) > 0 && time.Since(s.w.tailSince) >= s.opts.SealAfter {
				s.seal()
			}
			s.enforce()
		case <-s.stop:
			for {
				select {
				case it := <-s.in:
					s.writeBatch(it)
					continue
				default:
				}
				break
			}
			if len(s.tail) > 0 {
				s.seal()
			}
			return
		}
	}
}

// writeBatch writes it and whatever else is queued to the write-ahead file
// in one write, then indexes it. The records are framed straight into the
// tail's spare capacity, which readers never look at (they read up to
// len(s.tail) under s.mu), so each byte is copied once.
func (s *Store) writeBatch(first item) {
	w := &s.w
	w.items, w.recs = append(w.items[:0], first), w.recs[:0]
	for size := first.size(); size < 4<<20; {
		select {
		case it := <-s.in:
			w.items = append(w.items, it)
			size += it.size()
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
	need := 0
	for i := range w.items {
		if it := &w.items[i]; it.sync == nil {
			s.queued.Add(-it.size())
			need += int(it.size())
		}
	}
	if w.failing {
		s.stats.Dropped.Add(int64(len(w.items) - countSyncs(w.items)))
		syncs = collectSyncs(w.items, syncs)
		clear(w.items)
		return
	}
	if cap(s.tail)-len(s.tail) < need {
		s.mu.Lock()
		s.tail = slices.Grow(s.tail, need)
		s.mu.Unlock()
	}
	from := len(s.tail)
	buf := s.tail[from:from] // the spare capacity: no reallocation
	for i := range w.items {
		it := &w.items[i]
		if it.sync != nil {
			syncs = append(syncs, it.sync)
			continue
		}
		w.seq++
		switch it.kind {
		case KindSpans:
			w.scratch = spansBody(w.scratch[:0], it.ids, nil)
			buf = appendFrame(buf, it.kind, w.seq, it.t, w.scratch, it.req)
		case KindDecision:
			if it.decs != nil {
				for k := range it.decs {
					if k > 0 {
						w.seq++
					}
					w.scratch = decisionBody(w.scratch[:0], it.ids[k], it.decs[k])
					buf = appendFrame(buf, it.kind, w.seq, it.t, w.scratch)
					w.recs = append(w.recs, Record{Kind: it.kind, IDs: it.ids[k : k+1], Decision: it.decs[k]})
				}
				w.tailMax = max(w.tailMax, it.t)
				continue
			}
			w.scratch = decisionBody(w.scratch[:0], it.ids[0], it.dec)
			buf = appendFrame(buf, it.kind, w.seq, it.t, w.scratch)
		case KindDelivered:
			w.scratch = deliveredBody(w.scratch[:0], it.ids)
			buf = appendFrame(buf, it.kind, w.seq, it.t, w.scratch)
		}
		w.recs = append(w.recs, Record{Kind: it.kind, IDs: it.ids, Decision: it.dec})
		w.tailMax = max(w.tailMax, it.t)
	}
	clear(w.items) // do not keep the requests reachable
	if len(buf) == 0 {
		return
	}
	if err := s.write(w.wal, buf); err != nil {
		s.writeFailed("write-ahead file", err, len(w.recs))
		// Cut off a partial write, so that the next records follow whole ones.
		_ = w.wal.Truncate(w.walSize)
		return
	}
	w.walSize += int64(len(buf))
	s.stats.WALBytes.Add(int64(len(buf)))
	s.stats.DiskBytes.Add(int64(len(buf)))
	if from == 0 {
		w.tailSince = time.Now()
	}
	s.mu.Lock()
	s.tail = s.tail[:from+len(buf)]
	off := from
	for i := range w.recs {
		s.idx.apply(&w.recs[i], ref{seg: tailSeg, off: uint32(off)})
		off += frameHeader + int(le32(s.tail[off:]))
	}
	s.stats.Traces.Store(int64(len(s.idx.byID)))
	s.mu.Unlock()
	clear(w.recs)
	if len(s.tail) >= s.opts.BlockBytes {
		s.seal()
	}
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

// seal compresses the tail into a block at the end of the current segment
// and empties the write-ahead file.
func (s *Store) seal() {
	w := &s.w
	if w.seg == nil || s.segs[len(s.segs)-1].size >= w.segBytes {
		if err := s.newSegment(); err != nil {
			s.writeFailed("new segment", err, 0)
			return
		}
	}
	cur := s.segs[len(s.segs)-1]
	w.blk = s.codec.seal(w.blk[:0], s.tail, w.seq, w.tailMax)
	if err := s.write(w.seg, w.blk); err != nil {
		s.writeFailed(segName(cur.num), err, 0)
		_ = w.seg.Truncate(cur.size)
		if len(s.tail) > 16*s.opts.BlockBytes {
			s.dropTail() // the tail cannot grow for ever in memory
		}
		return
	}
	s.stats.BlockBytes.Add(int64(len(w.blk)))
	s.stats.DiskBytes.Add(int64(len(w.blk)) - w.walSize)
	s.mu.Lock()
	s.idx.sealed(cur.num, uint32(cur.size))
	cur.size += int64(len(w.blk))
	cur.maxTime = max(cur.maxTime, w.tailMax)
	s.tail = s.tail[:0]
	s.mu.Unlock()
	if cap(w.blk) > 8<<20 {
		w.blk = nil
	}
	if err := w.wal.Truncate(0); err != nil {
		s.log.Warn("tailsift store: cannot empty the write-ahead file", zap.Error(err))
	}
	w.walSize = 0
	s.enforce()
}

// dropTail forgets the unsealed records, which could not be sealed.
func (s *Store) dropTail() {
	s.mu.Lock()
	s.idx.dropTail()
	s.tail = s.tail[:0]
	s.mu.Unlock()
	_ = s.w.wal.Truncate(0)
	s.stats.DiskBytes.Add(-s.w.walSize)
	s.w.walSize = 0
}

// newSegment starts the next segment file.
func (s *Store) newSegment() error {
	num := uint32(1)
	if n := len(s.segs); n > 0 {
		num = s.segs[n-1].num + 1
	}
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
	cutoff := s.now() - int64(s.opts.Retention)
	for len(s.segs) > 1 && s.segs[0].maxTime < cutoff {
		s.evictOldest("retention")
	}
	for s.stats.DiskBytes.Load() > s.opts.MaxBytes && s.evictOldest("max_bytes") {
	}
}

// evictOldest deletes the oldest segment, unless it is the one being
// written, and reports whether it did.
func (s *Store) evictOldest(why string) bool {
	if len(s.segs) <= 1 {
		return false
	}
	old := s.segs[0]
	s.mu.Lock()
	s.segs = s.segs[1:]
	s.idx.evict(old.num)
	s.stats.Traces.Store(int64(len(s.idx.byID)))
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
	return true
}
