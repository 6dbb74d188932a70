package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/store"
)

// TestReplayedRequestQueuedForShardSurvivesCrash: a trace kept and not
// delivered at the last stop comes back from the store in one request per
// spans record (Replay), not recorded again: their records are older than
// any delivery begun since. When the trace's shard, busy, hands on the
// first request's spans while the second still waits in its queue, the
// delivery must not cover the trace: the second request's spans are not in
// the output batch yet. After a kill -9 before their own delivery, the
// next restart sends them again.
func TestReplayedRequestQueuedForShardSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	// The first run recorded two requests of trace 7 and its keep, then
	// was killed before the delivery.
	require.True(t, st.AppendSpans([][16]byte{tid(7)}, encode(t, []uint64{7}, 1, ptrace.StatusCodeError)))
	require.True(t, st.AppendSpans([][16]byte{tid(7)}, encodePairs(t, []uint64{7}, []uint64{2})))
	require.True(t, st.AppendDecision(tid(7), store.Decision{Keep: true, Policy: "errors", Reason: "errors"}))
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir)

	st2 := openTestStore(t, image)
	out2, _, b2 := rigOn(t, st2, 100)
	sh := b2.shardOf(new(tid(7)))
	busy, release, flushed, resume := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		ran <- b2.inShard(ctx, sh, func(ctx context.Context, s *shard) {
			close(busy)
			<-release
			// The first replayed request is taken in and handed on; the
			// second still waits in the queue.
			if m, ok := s.next(); ok {
				s.handle(ctx, m)
			}
			if err := s.flushOut(ctx, true); err != nil {
				t.Error(err)
			}
			close(flushed)
			<-resume
		})
	}()
	<-busy
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	queued := len(b2.shards[sh].in)
	require.Equal(t, 2, queued, "both replayed requests wait in the shard's queue")
	close(release)
	<-flushed
	sent := spanStates(out2.next(t))
	require.NoError(t, st2.Sync(ctx))
	image2 := crashCopy(t, image) // kill -9 now
	close(resume)
	require.NoError(t, <-ran)
	t.Logf("sent before the crash: %v", sent)
	require.NotContains(t, sent, uint64(2), "the second request was not taken in before the crash")

	st3 := openTestStore(t, image2)
	tr, err := st3.TraceInfo(tid(7))
	require.NoError(t, err)
	t.Logf("after the crash: keep=%v delivered=%v", tr.Decision.Keep, tr.Delivered)
	assert.False(t, tr.Delivered, "the delivery of the first request does not cover the second")
	out3, clk3, b3 := rigOn(t, st3, 200)
	n, err = b3.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d", n)
	require.NoError(t, b3.Sync(ctx))
	clk3.Advance(time.Second)
	require.NoError(t, b3.Sync(ctx))
	for len(out3.ch) > 0 {
		for span, state := range spanStates(<-out3.ch) {
			sent[span] = state
		}
	}
	assert.Contains(t, sent, uint64(2), "the second request's span is sent, before the crash or after the restart")
}
