package tracebuf

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
)

// TestKeptAfterLongDowntimeOutlivesRetries: after a downtime longer than
// the retention, the traces taken in again have their spans on disk only
// in the old segments (a replay does not record them again); the store
// holds those for max_wait + batch_timeout after the replay. A trace kept
// then whose delivery the next consumer keeps refusing (the backend is
// not up yet either, as after an outage of both) must still be on disk
// while the shard retries: a kill -9, or a restart, would lose it.
func TestKeptAfterLongDowntimeOutlivesRetries(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
	open := func(dir string) *store.Store {
		t.Helper()
		st, err := store.Open(store.Options{Dir: dir, Retention: 10 * time.Minute, MaxBytes: 1 << 30, Clock: clk})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, st.Close()) })
		return st
	}
	// First run: error trace 7 undecided (waiting for its quiet time) at a
	// kill -9.
	dir := t.TempDir()
	st := open(dir)
	b := storeBuffer(t, st, newChanSink().emit, clk)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.StoreSync(ctx))
	image := crashCopy(t, dir)

	// Down for an hour; the backend comes back later than the collector.
	clk.Advance(time.Hour)
	st2 := open(image)
	tried, up := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-up:
		default:
			close(up)
		}
	})
	down := func(context.Context, ptrace.Traces) error {
		select {
		case <-up:
			return nil
		default:
		}
		select {
		case tried <- struct{}{}:
		default:
		}
		return errors.New("backend unavailable") // retryable
	}
	bclk := clocktest.NewFake(clk.Now())
	b2 := storeBuffer(t, st2, down, bclk)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, b2.Sync(ctx))
	bclk.Advance(2 * time.Second) // quiet: kept by the errors policy, handed on, refused, retried
	select {
	case <-tried:
	case <-time.After(10 * time.Second):
		t.Fatal("the kept trace was not handed on")
	}
	require.NoError(t, st2.Sync(ctx))
	tr, err := st2.TraceInfo(tid(7))
	require.NoError(t, err)
	require.True(t, tr.Decision.Keep)
	require.False(t, tr.Delivered)

	// A minute of retries (well within the retention, past max_wait +
	// batch_timeout): the writer ticks every second.
	clk.Advance(time.Minute)
	assert.Never(t, func() bool {
		_, err := st2.TraceInfo(tid(7))
		return err != nil
	}, 2500*time.Millisecond, 50*time.Millisecond, "trace 7's spans stay on disk while its delivery is retried")
	require.NoError(t, st2.Sync(ctx))
	image2 := crashCopy(t, image) // kill -9 now
	close(up)

	st3 := open(image2)
	_, _, b3 := rigOn(t, st3, clk.Now().Unix())
	n, err = b3.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans taken in again after a kill -9 during the retries: %d of 2", n)
	assert.Equal(t, 2, n, "the kept error trace is sent after the restart")
}
