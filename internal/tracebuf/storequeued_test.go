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

// TestLateSpanQueuedForShardSurvivesCrash: a late span of a kept trace is
// recorded to the store when its request is admitted, before its shard
// takes it in. When the shard, busy, begins to hand on the trace's earlier
// spans while the request still waits in its queue, the delivery must not
// cover the late span: it is not in the output batch yet. After a kill -9
// before the late span's own delivery, the restart sends it again.
func TestLateSpanQueuedForShardSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.BatchTimeout = time.Second
	b, err := New(cfg, out.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	b.Start()
	t.Cleanup(func() {
		require.NoError(t, b.Shutdown(context.Background()))
		b.CloseStore()
	})
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // quiet: kept by the errors policy
	require.NoError(t, b.Sync(ctx))
	require.Len(t, spanStates(out.next(t)), 2, "the kept trace goes out")
	// A late span waits in the output batch for its timeout (not reached).
	require.NoError(t, b.Ingest(ctx, encodePairs(t, []uint64{7}, []uint64{3})))
	sh := b.shardOf(new(tid(7)))
	waiting := 0
	require.NoError(t, b.inShard(ctx, sh, func(_ context.Context, s *shard) { waiting = s.out.spans }))
	require.Equal(t, 1, waiting)

	// The shard is busy: the late span's request is recorded and queued,
	// not taken in. Then the shard hands its output batch on.
	busy, release := make(chan struct{}), make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		ran <- b.inShard(ctx, sh, func(ctx context.Context, s *shard) {
			close(busy)
			<-release
			if err := s.flushOut(ctx, true); err != nil {
				t.Error(err)
			}
		})
	}()
	<-busy
	require.NoError(t, b.Ingest(ctx, encodePairs(t, []uint64{7}, []uint64{4})))
	queued := len(b.shards[sh].in)
	require.Equal(t, 1, queued, "the late span waits in the shard's queue")
	close(release)
	require.NoError(t, <-ran)
	sent := spanStates(out.next(t))
	require.Contains(t, sent, uint64(3), "the first late span goes")
	// The shard took the late span in since: it waits in the output batch.
	require.NoError(t, b.inShard(ctx, sh, func(_ context.Context, s *shard) { waiting = s.out.spans }))
	require.Equal(t, 1, waiting, "the late span waits in the output batch")
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 now

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(7))
	require.NoError(t, err)
	t.Logf("after the crash: keep=%v delivered=%v", tr.Decision.Keep, tr.Delivered)
	assert.False(t, tr.Delivered, "the late span's spans record is not covered by the delivery")
	out2, clk2, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d", n)
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second)
	require.NoError(t, b2.Sync(ctx))
	for len(out2.ch) > 0 {
		for span, state := range spanStates(<-out2.ch) {
			sent[span] = state
		}
	}
	assert.Contains(t, sent, uint64(4), "the late span is sent, before the crash or after the restart")
}
