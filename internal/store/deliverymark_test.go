package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeliveryCoversWhatCameBefore: a delivery covers the spans records
// appended before it began (BeginDelivery), not a late span appended while
// it was under way, though the late span's record is written first; live
// and after a crash. Such a delivery is a kind 8 record; a delivery with no
// late span of its traces stays kind 3, which versions before kind 8 read.
func TestDeliveryCoversWhatCameBefore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	// Traces 1 and 2, kept.
	req, ids := request(t, []int{1, 2}, 2, 16)
	require.True(t, s.AppendSpans(ids, req))
	require.True(t, s.AppendDecisions(ids, []Decision{{Keep: true, Policy: "p", Reason: "quiet"}, {Keep: true, Policy: "p", Reason: "quiet"}}))
	require.NoError(t, s.Sync(ctx)) // written before the deliveries begin, in a block of their own

	// Trace 1 is being handed on when its late span is recorded; trace 2's
	// delivery has no late span, and trace 3's spans come while it is
	// under way (another trace: they do not matter to it).
	d1, d2 := s.BeginDelivery(), s.BeginDelivery()
	late, lateIDs := request(t, []int{1, 3}, 1, 16)
	require.True(t, s.AppendSpans(lateIDs, late))
	require.True(t, s.AppendDelivered(d1, [][16]byte{traceID(1)}))
	require.True(t, s.AppendDelivered(d2, [][16]byte{traceID(2)}))
	require.NoError(t, s.Sync(ctx))

	delivered := func(s *Store, n int) bool {
		t.Helper()
		tr, err := s.TraceInfo(traceID(n))
		require.NoError(t, err)
		return tr.Delivered
	}
	assert.False(t, delivered(s, 1), "the late span recorded during the delivery is not delivered")
	assert.True(t, delivered(s, 2), "a delivery with no late span delivers")

	// The same, read back after a crash.
	r := openStore(t, crashImage(t, dir), nil)
	decided := map[[16]byte]bool{}
	for _, d := range r.Claim().Decided {
		decided[d.ID] = d.Delivered
	}
	require.NoError(t, r.Close())
	assert.Equal(t, map[[16]byte]bool{traceID(1): false, traceID(2): true}, decided)

	// The late span's own delivery, begun after it was recorded, delivers.
	d := s.BeginDelivery()
	require.True(t, s.AppendDelivered(d, [][16]byte{traceID(1)}))
	require.NoError(t, s.Sync(ctx))
	assert.True(t, delivered(s, 1), "the late span's own delivery delivers")
	require.NoError(t, s.Close())
	assert.Equal(t, []byte{kindBlockRequest, kindDecisions, kindBlockRequest, kindDeliveredMark, KindDelivered, KindDelivered},
		frameKinds(t, filepath.Join(dir, segName(1))), "kind 8 only where a late span came during the delivery")
	r = openStore(t, dir, nil)
	defer func() { require.NoError(t, r.Close()) }()
	assert.True(t, delivered(r, 1))
	assert.True(t, delivered(r, 2))
}

// TestDeliveryWithoutBeginning: a delivery whose beginning the store
// dropped (queue full) records nothing: it cannot say what it covers.
func TestDeliveryWithoutBeginning(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	assert.False(t, s.AppendDelivered(&Delivery{}, [][16]byte{traceID(1)}))
	assert.False(t, s.AppendDelivered(nil, [][16]byte{traceID(1)}))
	assert.Equal(t, int64(2), s.Stats().Dropped.Load())
}

// TestSpansAfterMarkModulo: the index keeps the low 32 bits of a trace's
// newest spans record's sequence; compared with a mark modulo 2^32, it
// reads the order right across a wrap.
func TestSpansAfterMarkModulo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spans uint64
		mark  uint64
		after bool
	}{
		{"before", 10, 11, false},
		{"at", 11, 11, false},
		{"after", 12, 11, true},
		{"after, across a wrap", 1<<32 + 2, 1<<32 - 3, true},
		{"before, across a wrap", 1<<32 - 3, 1<<32 + 2, false},
		{"high bits", 5<<32 + 7, 5<<32 + 6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newIndex()
			x.apply(&Record{Kind: KindSpans, Seq: tc.spans, IDs: [][16]byte{traceID(1)}}, ref{seg: 1})
			x.apply(&Record{Kind: KindDecision, IDs: [][16]byte{traceID(1)}, Decision: Decision{Keep: true}}, ref{seg: 1})
			e, ok := x.get(traceID(1))
			require.True(t, ok)
			assert.Equal(t, tc.after, spansAfter(e, tc.mark))
			x.apply(&Record{Kind: KindDelivered, Seq: tc.spans + 1, IDs: [][16]byte{traceID(1)}, Mark: tc.mark, Marked: true}, ref{seg: 1})
			assert.Equal(t, !tc.after, e.flags&flagDelivered != 0)
		})
	}
}

// TestDeliveryMarkAcrossRestart: sequences go on from the highest one
// recovered, also after a crash that cut the last block, so that a
// delivery's mark in the new run is not older than the spans records of
// the run before. (A sequence that started again lower, as it does on a
// directory whose every segment was evicted, where nothing is left to
// compare with, could only err toward not delivered: the index holds the
// newest spans record in the order of the files, and a delivery's mark
// and the late span it must not cover are of one run.)
func TestDeliveryMarkAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	for n := range 20 {
		req, ids := request(t, []int{n}, 2, 16)
		require.True(t, s.AppendSpans(ids, req))
		require.NoError(t, s.Sync(ctx))
	}
	require.NoError(t, s.Close())
	written := s.w.seq
	require.Equal(t, uint64(20), written)

	// A kill -9 during the next block's write: a torn block after the 20.
	crashed := crashImage(t, dir)
	seg := filepath.Join(crashed, segName(1))
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(seg, append(data, data[:blockHeader+10]...), 0o640))
	r := openStore(t, crashed, nil)
	// Trace 3 kept; its delivery begins, a late span of it comes.
	require.True(t, r.AppendDecision(traceID(3), Decision{Keep: true, Policy: "p", Reason: "quiet"}))
	d := r.BeginDelivery()
	late, lateIDs := request(t, []int{3}, 1, 16)
	require.True(t, r.AppendSpans(lateIDs, late))
	require.True(t, r.AppendDelivered(d, [][16]byte{traceID(3)}))
	require.NoError(t, r.Sync(ctx))
	require.NoError(t, r.Close())
	assert.Equal(t, written+3, r.w.seq, "the sequence goes on from the highest recovered")
	r = openStore(t, crashed, nil)
	tr, err := r.TraceInfo(traceID(3))
	require.NoError(t, err)
	assert.False(t, tr.Delivered, "the late span of the second run is not delivered")
	require.NoError(t, r.Close())
}
