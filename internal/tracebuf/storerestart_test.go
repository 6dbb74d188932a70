package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
)

// TestRescueFromStoreSurvivesCrash: a trace rescued from the store by a
// late ERROR span is recorded as a keep by a late span, then delivered;
// after a kill -9 and a restart on the store's image, the store reports it
// kept and delivered (what the retrieval API reads), a retroactive keep is
// refused, nothing is sent again, and a later ERROR span of the trace
// leaves alone, marked as the rescue marked the trace, instead of
// rescuing the trace a second time.
func TestRescueFromStoreSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, out, clk, b := storeRig(t, dir, 0)
	dropTraces(t, b, clk, 5)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, map[uint64]string{1: "tailsift=rescue", 2: "tailsift=rescue", 3: "tailsift=rescue"}, spanStates(out.next(t)))
	// The rescuer records the delivery once the next consumer took the
	// trace; closing the rescuer waits for it. The store is not closed:
	// its files are copied as a kill -9 leaves them.
	b.CloseStore()
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir)

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(5))
	require.NoError(t, err)
	assert.True(t, tr.Decided && tr.Decision.Keep, "the store's last word is the rescue's keep")
	assert.Equal(t, ReasonLateSpan, tr.Decision.Reason)
	assert.True(t, tr.Delivered)

	out2, clk2, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "delivered: nothing sent again")
	_, err = b2.KeepStored(ctx, tid(5))
	require.ErrorIs(t, err, ErrNotDropped, "exported already: a retroactive keep would send it twice")

	require.NoError(t, b2.Ingest(ctx, encode(t, []uint64{5}, 4, ptrace.StatusCodeError)))
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second) // output batch
	require.NoError(t, b2.Sync(ctx))
	assert.Equal(t, map[uint64]string{4: "tailsift=rescue"}, spanStates(out2.next(t)), "the late span alone, as a rescue supplement")
	require.NoError(t, b2.ShutdownWithStorage(ctx))
	assert.Empty(t, out2.ch, "the trace is not rescued again")
}

// storeRig opens a store in dir and a buffer on it at unix second at,
// emitting into a chanSink.
func storeRig(t *testing.T, dir string, at int64) (*store.Store, *chanSink, *clocktest.Fake, *Buffer) {
	t.Helper()
	st := openTestStore(t, dir)
	out, clk, b := rigOn(t, st, at)
	return st, out, clk, b
}

// rigOn is a buffer on st at unix second at, emitting into a chanSink.
func rigOn(t *testing.T, st *store.Store, at int64) (*chanSink, *clocktest.Fake, *Buffer) {
	t.Helper()
	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(at, 0))
	return out, clk, storeBuffer(t, st, out.emit, clk)
}
