package tracebuf

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// countingObserver is a DecisionCounter that logs its calls.
type countingObserver struct {
	NopObserver
	mu      sync.Mutex
	decided int           // Decided calls
	counts  []countedCall // CountDecided calls, in order
}

type countedCall struct {
	policy        string
	keep          bool
	traces, spans int64
}

func (o *countingObserver) Decided(string, bool, int, string, time.Duration, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.decided++
}

func (o *countingObserver) CountDecided(policy string, keep bool, traces, spans int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts = append(o.counts, countedCall{policy, keep, traces, spans})
}

func (o *countingObserver) take() (int, []countedCall) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d, c := o.decided, o.counts
	o.decided, o.counts = 0, nil
	return d, c
}

// TestDecisionCountsPerCycle: an observer that is a DecisionCounter gets a
// shard's decisions summed per policy and outcome once per work cycle (one
// call per pair however many traces were decided), besides a Decided call
// per decision; the sums are the decisions' traces and buffered spans.
func TestDecisionCountsPerCycle(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig() // max_spans 1: each trace is decided on its first span
	obs := &countingObserver{}
	b, _ := startBuffer(t, cfg, (&collector{spans: map[[16]byte]int{}}).emit, obs)

	// One request, one shard: 4 error traces kept, 6 others dropped.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2, 3, 4}, 2, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	decided, counts := obs.take()
	assert.Equal(t, 4, decided)
	assert.Equal(t, []countedCall{{"errors", true, 4, 4}}, counts)

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5, 6, 7, 8, 9, 10}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{11, 12}, 2, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	decided, counts = obs.take()
	assert.Equal(t, 8, decided)
	var kept, dropped countedCall
	for _, c := range counts {
		if c.keep {
			kept.policy, kept.keep = c.policy, true
			kept.traces += c.traces
			kept.spans += c.spans
		} else {
			dropped.traces += c.traces
			dropped.spans += c.spans
		}
	}
	assert.Equal(t, countedCall{"errors", true, 2, 2}, kept)
	assert.Equal(t, countedCall{"", false, 6, 6}, dropped)
	assert.LessOrEqual(t, len(counts), 4, "at most one call per policy and outcome per request's cycle")

	// Nothing decided: nothing counted.
	require.NoError(t, b.Sync(ctx))
	_, counts = obs.take()
	assert.Empty(t, counts)
}

// countedTraces sums the traces of CountDecided calls.
func countedTraces(counts []countedCall) (n int64) {
	for _, c := range counts {
		n += c.traces
	}
	return n
}

// TestDecisionCountsReplayAndShutdown: the traces a buffer takes in again
// from the store after a crash and decides, and those the shutdown flush
// decides, reach CountDecided as they reach Decided (the status page
// counts decisions by policy only there).
func TestDecisionCountsReplayAndShutdown(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	first := storeBuffer(t, st, newChanSink().emit, clocktest.NewFake(time.Unix(0, 0)))
	require.NoError(t, first.Ingest(ctx, encode(t, []uint64{1, 2, 3}, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, first.Ingest(ctx, encode(t, []uint64{1}, 2, ptrace.StatusCodeError)))
	require.NoError(t, first.Sync(ctx))
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9: nothing decided

	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	obs := &countingObserver{}
	clk := clocktest.NewFake(time.Unix(100, 0))
	b, err := New(cfg, newChanSink().emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	st2 := openTestStore(t, image)
	b.AttachStore(st2)
	b.Start()
	defer b.CloseStore()
	n, err := b.Replay(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // quiet: the replayed traces are decided
	require.NoError(t, b.Sync(ctx))
	decided, counts := obs.take()
	assert.Equal(t, 3, decided, "replayed traces decided")
	assert.Equal(t, int64(decided), countedTraces(counts))

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7, 8}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Shutdown(ctx))
	decided, counts = obs.take()
	assert.Equal(t, 2, decided, "decided by the shutdown flush")
	assert.Equal(t, int64(decided), countedTraces(counts))
}
