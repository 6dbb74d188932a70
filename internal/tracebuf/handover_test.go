package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/wire"
)

// evenOwner owns the traces whose hash is even.
func evenOwner(h uint64) bool { return h%2 == 0 }

func TestTakeForeign(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Shards = 2
	cfg.Completion.MaxSpans = 100
	out := &collector{spans: map[[16]byte]int{}}
	b, clk := startBuffer(t, cfg, out.emit, nil)

	traces := make([]uint64, 40)
	for i := range traces {
		traces[i] = uint64(i + 1)
	}
	require.NoError(t, b.Ingest(ctx, encodePairs(t, traces, []uint64{2, 3, 3})))
	require.NoError(t, b.Sync(ctx))

	taken := map[[16]byte]int{}
	for sh := range b.Shards() {
		for more := true; more; {
			var f cluster.Foreign
			var err error
			f, more, err = b.TakeForeign(ctx, sh, evenOwner, 200)
			require.NoError(t, err)
			var batch wire.Batch
			require.NoError(t, wire.Scan(f.Traces, &batch))
			assert.Len(t, batch.Spans, f.Spans-f.NTraces, "the duplicate of span 3 is left out")
			for _, sp := range batch.Spans {
				assert.False(t, evenOwner(hashID(&sp.TraceID)), "only foreign traces are taken")
				taken[sp.TraceID]++
			}
		}
	}
	var foreign int
	for _, n := range traces {
		id := tid(n)
		if !evenOwner(hashID(&id)) {
			foreign++
			assert.Equal(t, 2, taken[id], "trace %d taken whole", n)
		}
	}
	require.Positive(t, foreign)
	assert.Len(t, taken, foreign)

	// The foreign traces are gone: deciding everything emits only the owned
	// ones (the errors policy keeps nothing; a late ERROR span is a new trace).
	clk.Advance(time.Minute)
	require.NoError(t, b.Sync(ctx))
	again := 0
	for sh := range b.Shards() {
		f, _, err := b.TakeForeign(ctx, sh, evenOwner, 1<<20)
		require.NoError(t, err)
		again += f.NTraces
	}
	assert.Zero(t, again)
}

func TestForeignDecisionsAndIngestDecisions(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Shards = 2
	out := &collector{spans: map[[16]byte]int{}}
	b, clk := startBuffer(t, cfg, out.emit, nil)

	// Traces 1-20 are kept (ERROR), 21-40 dropped; max_spans 1 decides each
	// at once.
	var kept, dropped []uint64
	for n := uint64(1); n <= 40; n++ {
		if n <= 20 {
			kept = append(kept, n)
		} else {
			dropped = append(dropped, n)
		}
	}
	require.NoError(t, b.Ingest(ctx, encode(t, kept, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, dropped, 1, ptrace.StatusCodeOk)))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))

	var all cluster.Decisions
	for sh := range b.Shards() {
		d, err := b.ForeignDecisions(ctx, sh, evenOwner)
		require.NoError(t, err)
		all.Kept = append(all.Kept, d.Kept...)
		all.Dropped = append(all.Dropped, d.Dropped...)
	}
	wantKept, wantDropped := 0, 0
	for _, n := range kept {
		if id := tid(n); !evenOwner(hashID(&id)) {
			wantKept++
		}
	}
	for _, n := range dropped {
		if id := tid(n); !evenOwner(hashID(&id)) {
			wantDropped++
		}
	}
	require.Len(t, all.Kept, wantKept)
	require.Len(t, all.Dropped, wantDropped)

	// Another gateway takes them in: late spans follow the decisions.
	out2 := &collector{spans: map[[16]byte]int{}}
	b2, clk2 := startBuffer(t, cfg, out2.emit, nil)
	require.NoError(t, b2.IngestDecisions(ctx, &all))
	// Without the decisions, an OK span would be dropped and an ERROR span
	// kept: the late spans of kept traces are OK, those of dropped ones ERROR.
	require.NoError(t, b2.Ingest(ctx, encode(t, kept, 7, ptrace.StatusCodeOk)))
	require.NoError(t, b2.Ingest(ctx, encode(t, dropped, 7, ptrace.StatusCodeError)))
	clk2.Advance(time.Second)
	require.NoError(t, b2.Sync(ctx))
	for _, n := range kept {
		if id := tid(n); !evenOwner(hashID(&id)) {
			assert.Equal(t, 1, out2.count(id), "late span of kept trace %d follows the decision", n)
		}
	}
	for _, n := range dropped {
		if id := tid(n); !evenOwner(hashID(&id)) {
			assert.Zero(t, out2.count(id), "late span of dropped trace %d follows the decision", n)
		}
	}
}

func TestInShardAfterShutdown(t *testing.T) {
	cfg := testBufferConfig()
	b, err := New(cfg, (&collector{spans: map[[16]byte]int{}}).emit, Settings{})
	require.NoError(t, err)
	b.Start()
	require.NoError(t, b.Shutdown(context.Background()))
	_, _, err = b.TakeForeign(context.Background(), 0, evenOwner, 1)
	require.ErrorIs(t, err, ErrShutdown)
	require.ErrorIs(t, b.IngestDecisions(context.Background(), &cluster.Decisions{Dropped: []uint64{1}}), ErrShutdown)
}

// TestHandedKeptDecisionKeepsBufferedTrace: after a ring change the new
// owner gets a kept trace's late spans at once, but its decision only with
// the handover, handover.settle (5 s by default) later. The late spans
// start an undecided trace there. IngestDecisions used to skip the kept
// decision then, and the new owner decided the late spans alone: without
// the ERROR span (exported by the old owner) they were dropped. They are
// kept now, as at the old owner.
func TestHandedKeptDecisionKeepsBufferedTrace(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100 // the late span waits for quiet, as by default
	out := &collector{spans: map[[16]byte]int{}}
	b, clk := startBuffer(t, cfg, out.emit, nil)

	const n = 5
	id := tid(n)
	// The late OK span of kept trace 5 reaches its new owner first...
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{n}, 7, ptrace.StatusCodeOk)))
	require.NoError(t, b.Sync(ctx))
	// ...then the old owner's handover brings the kept decision.
	require.NoError(t, b.IngestDecisions(ctx, &cluster.Decisions{Kept: []cluster.Kept{{ID: id, Threshold: 0}}}))
	clk.Advance(time.Minute)
	require.NoError(t, b.Sync(ctx))
	require.Equal(t, 1, out.count(id), "the late span of a kept trace is kept by the new owner")
}
