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
	clk, open, image2 := downtimeRig(t)
	st3 := open(image2)
	_, _, b3 := rigOn(t, st3, clk.Now().Unix())
	n, err := b3.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans taken in again after the downtime: %d of 4", n)
	assert.Equal(t, 4, n, "every span of the traces undecided at the kill")
}

// TestCrashAfterReplayAfterLongDowntime: after a downtime longer than the
// retention, the traces taken in again are undecided in the buffer, their
// spans on disk only in the old segments (a replay does not record them
// again). Those segments went at the writer's first tick after the
// replay, and a kill -9 before the traces' decisions (up to max_wait
// later) lost them. They stay until max_wait after the replay.
func TestCrashAfterReplayAfterLongDowntime(t *testing.T) {
	ctx := context.Background()
	clk, open, image2 := downtimeRig(t)
	st3 := open(image2)
	_, _, b3 := rigOn(t, st3, clk.Now().Unix())
	n, err := b3.Replay(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	// The writer ticks every second: two ticks, the traces still undecided.
	assert.Never(t, func() bool {
		_, err := st3.TraceInfo(tid(1))
		return err != nil
	}, 2500*time.Millisecond, 50*time.Millisecond, "trace 1's spans stay on disk while it waits for its decision")
	require.NoError(t, st3.Sync(ctx))
	image3 := crashCopy(t, image2) // kill -9 now

	st4 := open(image3)
	_, _, b4 := rigOn(t, st4, clk.Now().Unix())
	n, err = b4.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans taken in again after a kill -9 right after the replay: %d of 4", n)
	assert.Equal(t, 4, n)
}

// downtimeRig writes trace 1 (3 spans, undecided) in a first run killed
// with it, trace 2 (1 span) in a second run a minute later, each run in a
// segment of its own, and advances the clock by an hour (six retentions).
// It returns the clock, an opener of stores on it, and the directory as
// the second kill left it.
func downtimeRig(t *testing.T) (*clocktest.Fake, func(string) *store.Store, string) {
	t.Helper()
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
	return clk, open, image2
}
