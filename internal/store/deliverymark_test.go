package store

import (
	"context"
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
