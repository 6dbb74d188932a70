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

// TestLateSpansCutInTwoSurviveCrash: the late spans of a kept trace, in
// one request, fill the output batch's open request past
// output.batch_max_spans: the batch cuts them in two and hands the first
// part on at once; the second waits in the open request for the batch's
// timeout. The first part's delivery must not cover the second: after a
// kill -9 before the second goes, the restart sends the trace again.
func TestLateSpansCutInTwoSurviveCrash(t *testing.T) {
	for _, output := range []string{"pdata", "wire"} {
		t.Run("output="+output, func(t *testing.T) { lateSpansCutInTwo(t, output == "wire") })
	}
}

func lateSpansCutInTwo(t *testing.T, wireOut bool) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.BatchMaxSpans = 4
	cfg.Output.BatchTimeout = time.Second
	b, err := New(cfg, out.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	if wireOut { // the output::exporter path: requests as bytes (sendWire)
		b.SetEmitWire(func(ctx context.Context, req []byte, _ int) error {
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
			if err != nil {
				return err
			}
			return out.emit(ctx, td)
		})
	}
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
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	require.Len(t, spanStates(out.next(t)), 2, "the kept trace goes out")

	// Six late spans in one request: four go at once, two wait.
	require.NoError(t, b.Ingest(ctx, encodePairs(t, []uint64{7}, []uint64{3, 4, 5, 6, 7, 8})))
	sent := spanStates(out.next(t))
	require.Len(t, sent, 4, "the first part of the late spans goes at once")
	// (Not b.Sync: it hands the whole output batch on.) Once the shard
	// runs this, the first part's delivery is queued to the store.
	waiting := 0
	require.NoError(t, b.inShard(ctx, 0, func(_ context.Context, s *shard) { waiting = s.out.spans }))
	require.Equal(t, 2, waiting, "the rest waits in the output batch for its timeout")
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 now

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(7))
	require.NoError(t, err)
	t.Logf("after the crash: keep=%v delivered=%v", tr.Decision.Keep, tr.Delivered)
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
	for span := uint64(3); span <= 8; span++ {
		assert.Contains(t, sent, span, "late span %d is sent, before the crash or after the restart", span)
	}
}
