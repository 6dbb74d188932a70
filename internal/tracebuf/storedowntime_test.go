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

// TestStartAfterLongDowntimeReplaysEverything: a collector stopped (killed)
// for longer than the store's retention starts again on its directory. The
// traces that were undecided at the stop are still to be decided: their
// spans were accepted, and the store holds them. Its first eviction by
// retention ran when the store opened, before any component read them
// back, and removed every segment but the newest: the spans of the older
// segments were lost.
func TestStartAfterLongDowntimeReplaysEverything(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
	open := func(dir string) *store.Store {
		t.Helper()
		st, err := store.Open(store.Options{Dir: dir, Retention: 10 * time.Minute, MaxBytes: 1 << 30, Clock: clk})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, st.Close()) })
		return st
	}
	// First run: trace 1 undecided (no ERROR, waiting for its quiet time)
	// at a kill -9.
	dir := t.TempDir()
	st := open(dir)
	b := storeBuffer(t, st, newChanSink().emit, clk)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 3, ptrace.StatusCodeUnset)))
	require.NoError(t, b.StoreSync(ctx))
	image := crashCopy(t, dir)

	// Second run, a minute later: it takes trace 1 back (undecided still)
	// and trace 2 comes, in a segment of its own; killed again.
	clk.Advance(time.Minute)
	st2 := open(image)
	_, _, b2 := rigOn(t, st2, clk.Now().Unix())
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.NoError(t, b2.Ingest(ctx, encode(t, []uint64{2}, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b2.StoreSync(ctx))
	image2 := crashCopy(t, image)

	// Down for an hour, six retentions.
	clk.Advance(time.Hour)
	st3 := open(image2)
	_, _, b3 := rigOn(t, st3, clk.Now().Unix())
	n, err = b3.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans taken in again after the downtime: %d of 4", n)
	assert.Equal(t, 4, n, "every span of the traces undecided at the kill")
}
