package store

import (
	"context"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzRecoverSegment: a store opened on a damaged segment never panics,
// and every trace it then reports can be read. The fuzzer's records are
// sealed into a block with a valid checksum, so that the decompressors,
// the columnar decoder, the record parser and the index see any bytes, not
// only what a checksum lets through; tail is appended after the block as
// it is, and flip changes one byte of the block's compressed bytes before
// the checksum is computed (a valid checksum of corrupt compressed bytes).
//
// An intact block whose records parse whole is read back whole.
//
// A disk full of garbage must cost the store its segment (counted in
// Stats.CorruptSegments), never the collector: a panic at Open would be a
// crash loop, losing every trace the store holds.
func FuzzRecoverSegment(f *testing.F) {
	var id [16]byte
	copy(id[:], pbTraceID)
	var records []byte
	records = appendFrame(records, KindSpans, 1, 2, spansBody(nil, [][16]byte{id}, pbRequest(pbSpan())))
	records = appendFrame(records, KindDecision, 2, 3, decisionBody(nil, id, Decision{Keep: true, Policy: "errors", Reason: "quiet"}))
	records = appendFrame(records, KindDelivered, 3, 4, deliveredBody(nil, [][16]byte{id}))
	decs, _ := decisionsBody(nil, [][16]byte{id}, []Decision{{Keep: true, Threshold: 7, RV: 0xabc, HasRV: true, Policy: "salted", Reason: "quiet"}}, nil, true)
	records = appendFrame(records, kindDecisionsRV, 4, 4, decs)
	start := len(records)
	records = appendSpansFrame(records, 4, pbRequest(pbSpan(), pbSpan()))
	sealFrame(records[start:], 5)
	records = appendFrame(records, kindDeliveredMark, 6, 4, deliveredMarkBody(nil, 4, [][16]byte{id}))
	for kind := range 3 { // zstd, s2, s2col
		f.Add(uint8(kind), records, []byte(nil), uint16(0))
		f.Add(uint8(kind), records, []byte{1, 2, 3}, uint16(7))
	}
	f.Add(uint8(0), []byte{}, []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, kind uint8, records, tail []byte, flip uint16) {
		// Larger inputs only slow the fuzzer: a block holds at most a few MiB.
		records, tail = records[:min(len(records), 1<<20)], tail[:min(len(tail), 1<<20)]
		compressions := []string{CompressionZstd, CompressionS2, CompressionS2Col}
		c, err := newCodec(compressions[int(kind)%len(compressions)])
		require.NoError(t, err)
		defer c.close()
		var seg []byte
		if len(records) > 0 {
			seg = c.seal(nil, records, 9, 9)
			if comp := seg[blockHeader:]; flip > 0 && len(comp) > 0 {
				comp[int(flip)%len(comp)] ^= byte(flip>>8) | 1
				b, err := parseBlockHeader(seg)
				require.NoError(t, err)
				b.crc = crc32.Checksum(comp, castagnoli)
				appendBlockHeader(seg[:0], b)
			}
		}
		seg = append(seg, tail...)

		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o640))
		s, err := Open(Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 30})
		require.NoError(t, err, "a damaged segment is skipped, not refused")
		defer func() { require.NoError(t, s.Close()) }()
		rec := s.Claim()
		if flip == 0 && len(tail) == 0 && len(records) > 0 {
			// An intact block of records the parser takes whole is read
			// back whole.
			n, err := ParseRecords(records, func(*Record) error { return nil })
			if err == nil && n == len(records) {
				require.Zero(t, s.Stats().CorruptSegments.Load(), "an intact block was skipped")
			}
		}
		reported := rec.Undecided
		for _, d := range rec.Decided {
			reported = append(reported, d.ID)
		}
		for _, id := range reported {
			if _, err := s.Trace(id); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatalf("trace %x: %v", id, err)
			}
		}
		// The store still takes records after what it skipped.
		req, ids := request(t, []int{7}, 1, 16)
		require.True(t, s.AppendSpans(ids, req))
		require.NoError(t, s.Sync(context.Background()))
		tr, err := s.Trace(ids[0])
		require.NoError(t, err)
		require.GreaterOrEqual(t, tr.Spans, 1) // the fuzzer's records may hold the same ID
	})
}
