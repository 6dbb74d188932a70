package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpansAfterDeliveryUndeliver: a spans record of a kept trace written
// after its delivery record makes the trace undelivered, live and after a
// crash, until a delivery record follows it; a dropped trace's late spans
// change nothing.
func TestSpansAfterDeliveryUndeliver(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	for _, n := range []int{1, 2} {
		req, ids := request(t, []int{n}, 2, 16)
		require.True(t, s.AppendSpans(ids, req))
		require.True(t, s.AppendDecision(traceID(n), Decision{Keep: n == 1, Policy: "p", Reason: "quiet"}))
		require.True(t, s.AppendDelivered(s.BeginDelivery(), [][16]byte{traceID(n)}))
	}
	req, ids := request(t, []int{1, 2}, 1, 16) // late spans of both
	require.True(t, s.AppendSpans(ids, req))
	require.NoError(t, s.Sync(ctx))

	delivered := func(s *Store, n int) bool {
		t.Helper()
		tr, err := s.TraceInfo(traceID(n))
		require.NoError(t, err)
		return tr.Delivered
	}
	assert.False(t, delivered(s, 1), "the kept trace's late span is not delivered")
	assert.True(t, delivered(s, 2), "a dropped trace's late span changes nothing")

	r := openStore(t, crashImage(t, dir), nil)
	defer func() { require.NoError(t, r.Close()) }()
	for _, d := range r.Claim().Decided {
		if d.ID == traceID(1) {
			assert.False(t, d.Delivered, "after a crash, the kept trace is sent again")
		}
	}

	require.True(t, s.AppendDelivered(s.BeginDelivery(), [][16]byte{traceID(1)}))
	require.NoError(t, s.Sync(ctx))
	assert.True(t, delivered(s, 1), "delivered again once the late span's delivery is recorded")
}
