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
)

// recover reads the segments and the write-ahead file back into the index
// and the tail. A corrupt or truncated block ends its segment's recovery
// (the blocks before it are kept, the segment is counted in
// Stats.CorruptSegments); a cut write-ahead file keeps its whole records.
func (s *Store) recover() error {
	nums, err := s.segmentNumbers()
	if err != nil {
		return err
	}
	var maxSeq uint64
	var raw []byte
	for _, num := range nums {
		data, err := os.ReadFile(filepath.Join(s.opts.Dir, segName(num)))
		if err != nil {
			return fmt.Errorf("read segment %s: %w", segName(num), err)
		}
		seg := &segment{num: num, size: int64(len(data))}
		off := 0
		for off < len(data) {
			var b blockInfo
			b, raw, err = s.readBlock(data[off:], raw)
			if err == nil {
				_, err = ParseRecords(raw, func(r *Record) error {
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
	if err := s.recoverWAL(maxSeq); err != nil {
		return err
	}
	s.recovery = s.snapshot()
	s.stats.Traces.Store(int64(len(s.idx.byID)))
	s.enforce()
	return nil
}

// readBlock checks and decompresses the block at the start of data.
func (s *Store) readBlock(data, raw []byte) (blockInfo, []byte, error) {
	b, err := parseBlockHeader(data)
	if err != nil {
		return b, raw, err
	}
	if blockHeader+b.compLen > len(data) {
		return b, raw, errTruncated
	}
	raw, err = s.codec.open(raw, b, data[blockHeader:blockHeader+b.compLen])
	return b, raw, err
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

// recoverWAL takes the write-ahead file's records newer than the sealed
// ones (maxSeq) into the tail, and rewrites the file to hold just them.
func (s *Store) recoverWAL(maxSeq uint64) error {
	path := filepath.Join(s.opts.Dir, walName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read write-ahead file: %w", err)
	}
	s.w.seq = maxSeq
	off := 0
	_, perr := ParseRecords(data, func(r *Record) error {
		n := frameHeader + int(le32(data[off:]))
		if r.Seq > maxSeq {
			s.idx.apply(r, ref{seg: tailSeg, off: uint32(len(s.tail))})
			s.tail = append(s.tail, data[off:off+n]...)
			s.w.seq = max(s.w.seq, r.Seq)
			s.w.tailMax = max(s.w.tailMax, r.Time)
		}
		off += n
		return nil
	})
	if perr != nil {
		s.stats.CorruptSegments.Add(1)
		s.log.Warn("tailsift store: write-ahead file cut short, its whole records are kept",
			zap.Int("offset", off), zap.Error(perr))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, s.tail, 0o640); err != nil {
		return fmt.Errorf("rewrite write-ahead file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rewrite write-ahead file: %w", err)
	}
	s.w.wal, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open write-ahead file: %w", err)
	}
	s.w.walSize = int64(len(s.tail))
	s.w.tailSince = time.Now()
	s.stats.DiskBytes.Add(s.w.walSize)
	return nil
}
