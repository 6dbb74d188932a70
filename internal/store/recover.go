package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/wire"
)

// recover reads the segments back into the index. A corrupt or truncated
// block ends its segment's recovery (the blocks before it are kept, the
// segment is counted in Stats.CorruptSegments). A kill -9 during a write leaves the last block
// of the last segment cut short: the records before it are all kept.
func (s *Store) recover() error {
	nums, err := s.segmentNumbers()
	if err != nil {
		return err
	}
	var maxSeq uint64
	var raw []byte
	var batch wire.Batch
	for _, num := range nums {
		// A new segment never takes the number of a file found here, read
		// or not.
		s.w.lastNum = max(s.w.lastNum, num)
		data, err := os.ReadFile(filepath.Join(s.opts.Dir, segName(num)))
		if err != nil {
			// One segment the store cannot read (an I/O error, a
			// permission, a directory in its place) is skipped and
			// counted, as a corrupt one is: it failed Open, and the
			// collector did not start.
			s.stats.CorruptSegments.Add(1)
			s.log.Warn("tailsift store: segment not readable, skipped", zap.String("segment", segName(num)), zap.Error(err))
			continue
		}
		seg := &segment{num: num, size: int64(len(data))}
		off := 0
		for off < len(data) {
			var b blockInfo
			b, raw, err = s.codec.readBlock(data[off:], raw)
			if err == nil {
				_, err = ParseRecords(raw, func(r *Record) error {
					requestIDs(r, &batch)
					s.idx.apply(r, ref{seg: num, off: uint32(off)})
					maxSeq = max(maxSeq, r.Seq)
					return nil
				})
			}
			if err != nil {
				s.stats.CorruptSegments.Add(1)
				s.log.Warn("tailsift store: corrupt or truncated segment, the rest of it is skipped",
					zap.String("segment", segName(num)), zap.Int("offset", off), zap.Error(err))
				break
			}
			seg.maxTime = max(seg.maxTime, b.maxTime)
			off += blockHeader + b.compLen
		}
		s.segs = append(s.segs, seg)
		s.stats.DiskBytes.Add(seg.size)
	}
	s.w.seq = maxSeq
	if err := s.recoverWAL(maxSeq); err != nil {
		return err
	}
	s.recovery = s.snapshot()
	s.recovery.s = s
	s.stats.Traces.Store(int64(s.idx.len()))
	if s.recovery.needsReplay() {
		s.hold.Store(s.now() + holdFor(s.opts.Retention))
	}
	s.enforce()
	return nil
}

// holdFor bounds the hold on eviction by retention at Open: a
// component that claimed the recovery and never said it read it back
// (Recovery.Replayed) holds the old segments no longer than this.
func holdFor(retention time.Duration) int64 { return int64(max(retention, time.Minute)) }

// retentionHeld reports whether eviction by retention waits at now: the
// recovery's traces are not read back yet. A start after more than the
// retention of downtime evicted every segment but the newest at Open,
// before the components read their undecided traces back, and their
// spans were lost (TestStartAfterLongDowntimeReplaysEverything). max_bytes
// is enforced all the same.
func (s *Store) retentionHeld(now int64) bool {
	h := s.hold.Load()
	return h != 0 && now < h
}

// requestIDs sets the IDs of a spans record written without them: the
// trace IDs of its request's spans, in order, adjacent repeats removed. A
// request that does not scan gets none: it was scanned when it was
// accepted, so only a corrupt one (which its CRC would have caught) could.
func requestIDs(r *Record, batch *wire.Batch) {
	if !r.IDsOmitted {
		return
	}
	defer batch.Reset()
	if wire.Scan(r.Request, batch) != nil {
		return
	}
	for i := range batch.Spans {
		if id := batch.Spans[i].TraceID; len(r.IDs) == 0 || r.IDs[len(r.IDs)-1] != id {
			r.IDs = append(r.IDs, id)
		}
	}
}

// segmentNumbers lists the segment files in Dir, oldest first.
func (s *Store) segmentNumbers() ([]uint32, error) {
	des, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("list directory %q: %w", s.opts.Dir, err)
	}
	var nums []uint32
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, ".tsl") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".tsl"), 10, 32)
		if err != nil || n == 0 {
			continue
		}
		nums = append(nums, uint32(n))
	}
	slices.Sort(nums)
	return nums, nil
}

// recoverWAL takes the records of a write-ahead file left by an older
// version of the store (which wrote records there before compressing them
// into blocks) that are newer than the blocks' (maxSeq) into a block, and
// removes the file.
func (s *Store) recoverWAL(maxSeq uint64) error {
	path := filepath.Join(s.opts.Dir, walName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read write-ahead file: %w", err)
	}
	var raw []byte
	var maxTime int64
	var batch wire.Batch
	off := 0
	_, perr := parseRecords(data, false, func(r *Record) error {
		requestIDs(r, &batch)
		n := frameHeader + int(le32(data[off:]))
		if r.Seq > maxSeq {
			if r.BatchIndex == 0 { // a decisions record's frame once
				raw = append(raw, data[off:off+n]...)
			}
			rec := *r
			rec.IDs = slices.Clone(r.IDs)
			s.w.recs = append(s.w.recs, rec)
			s.w.seq = max(s.w.seq, r.Seq)
			maxTime = max(maxTime, r.Time)
		}
		if r.BatchIndex == r.BatchLen-1 || r.BatchLen == 0 {
			off += n
		}
		return nil
	})
	if perr != nil {
		s.stats.CorruptSegments.Add(1)
		s.log.Warn("tailsift store: write-ahead file cut short, its whole records are kept",
			zap.Int("offset", off), zap.Error(perr))
	}
	if len(raw) > 0 {
		s.appendBlock(raw, maxTime)
		s.w.recs = s.w.recs[:0]
		if s.w.failing {
			return fmt.Errorf("write the write-ahead file's records to a segment: %s failed", segName(s.segs[len(s.segs)-1].num))
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove write-ahead file: %w", err)
	}
	return nil
}
