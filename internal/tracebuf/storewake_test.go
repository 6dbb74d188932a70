package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestInlineIngestRecordsItsDecisions: an Ingest call that runs its shard
// itself (tryIngest) and decides traces there hands the decisions to the
// store itself, and does not wake the shard's goroutine for them. Before,
// it left them to the goroutine (kick): with the store on, one more
// wake-up of the goroutine, and one more block for the writer, for nearly
// every request that decided something; with the store off, none.
//
// The buffer is started without its shards' goroutines, so that every
// Ingest call runs its shard and a wake-up stays in its channel to be seen.
func TestInlineIngestRecordsItsDecisions(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	b, err := New(cfg, func(context.Context, ptrace.Traces) error { return nil }, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	for _, s := range b.shards {
		s.makeTimer()
	}
	s := b.shards[0]

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5, 6}, 1, ptrace.StatusCodeUnset)))
	clk.Advance(2 * time.Second) // quiet: both are due
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 2, ptrace.StatusCodeUnset)))

	assert.Zero(t, len(s.kick), "the goroutine is not woken for the store")
	assert.Empty(t, b.store.pending[s.id].ids, "the decisions went to the store")
	require.NoError(t, st.Sync(ctx))
	for _, id := range []uint64{5, 6} {
		tr, err := st.Trace(tid(id))
		require.NoError(t, err)
		assert.True(t, tr.Decided, "trace %d", id)
		assert.False(t, tr.Decision.Keep, "trace %d", id)
	}
	tr, err := st.Trace(tid(7))
	require.NoError(t, err)
	assert.False(t, tr.Decided, "trace 7 waits for its quiet")

	// Now with the goroutines: trace 7 is decided at its wake-up.
	b.mu.Lock()
	b.started = false
	b.mu.Unlock()
	b.Start()
	clk.Advance(2 * time.Second)
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, b.Shutdown(ctx))
	b.CloseStore()
	require.NoError(t, st.Sync(ctx))
	tr, err = st.Trace(tid(7))
	require.NoError(t, err)
	assert.True(t, tr.Decided)
}
