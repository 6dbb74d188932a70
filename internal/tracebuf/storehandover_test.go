package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/sampling"
)

// TestHandedOverKeepSurvivesCrash: another gateway rescued trace 8 and
// handed the keep over; trace 8 had no span buffered here. Its late ERROR
// span is sent on here, marked as the rescue marked the trace. After a
// kill -9 and a restart on the store's image, the store still knows the
// keep (a keep by a late span, as the rescue was), the span is not decided
// afresh and sent a second time, and a later span follows the keep.
func TestHandedOverKeepSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, out, clk, b := storeRig(t, dir, 0)
	require.NoError(t, b.IngestDecisions(ctx, &cluster.Decisions{Kept: []cluster.Kept{
		{ID: tid(8), Supplement: uint8(sampling.SupplementRescue)},
		{ID: tid(9), Threshold: 1 << 55}, // none of its spans comes here
	}}))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{8}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, map[uint64]string{3: "tailsift=rescue"}, spanStates(out.next(t)))
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir)

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(8))
	require.NoError(t, err)
	assert.True(t, tr.Decided && tr.Decision.Keep, "the store knows the keep")
	assert.Equal(t, ReasonLateSpan, tr.Decision.Reason, "a handed-over rescue is stored as a keep by a late span")
	out2, clk2, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "delivered: nothing taken in again")
	clk2.Advance(2 * time.Second)
	require.NoError(t, b2.Sync(ctx))
	if tr.Decided && tr.Decision.Keep {
		// A later span follows the keep, marked as before the restart.
		require.NoError(t, b2.Ingest(ctx, encode(t, []uint64{8}, 4, ptrace.StatusCodeUnset)))
		require.NoError(t, b2.Sync(ctx))
		clk2.Advance(time.Second) // output batch
		require.NoError(t, b2.Sync(ctx))
		assert.Equal(t, map[uint64]string{4: "tailsift=rescue"}, spanStates(out2.next(t)))
	}
	require.NoError(t, b2.ShutdownWithStorage(ctx))
	sent := 0
	for len(out2.ch) > 0 {
		td := <-out2.ch
		t.Logf("sent again: %v", spanStates(td))
		sent += td.SpanCount()
	}
	assert.Zero(t, sent, "spans sent a second time")
}
