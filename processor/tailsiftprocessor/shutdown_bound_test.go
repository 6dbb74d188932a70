package tailsiftprocessor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// TestCallerReusesTraces: td is the caller's once ConsumeTraces returns:
// changing or clearing it changes nothing of what is kept.
func TestCallerReusesTraces(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	td := batch(errorTrace(1)...)
	require.NoError(t, h.p.ConsumeTraces(context.Background(), td))
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range sp.Len() {
		sp.At(i).SetName("reused")
		sp.At(i).Status().SetCode(ptrace.StatusCodeOk)
	}
	td.ResourceSpans().RemoveIf(func(ptrace.ResourceSpans) bool { return true })
	h.advance(0)
	h.advance(2 * time.Second)
	got := h.spansOf(1)
	require.Len(t, got, 3, "kept after the caller reused td")
	for _, s := range got {
		require.NotEqual(t, "reused", s.Name(), "the processor read td after ConsumeTraces returned")
	}
}

// ctxBlocking is a next consumer that blocks until released or until its
// context ends.
type ctxBlocking struct {
	*tracebuftest.Blocking
	entered *sync.Once // shards call concurrently: Entered closes once
}

func (b ctxBlocking) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	b.entered.Do(func() { close(b.Entered) })
	select {
	case <-b.Release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// TestClusterShutdownBound: with a cluster block, Shutdown gave the
// handover half of output.shutdown_timeout, then the buffer a whole one of
// its own: up to 1.5 times the bound. One deadline covers both now.
func TestClusterShutdownBound(t *testing.T) {
	_, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := testConfig()
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = self, []string{self, addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	c.Handover.BytesPerSecond = 1 // every send waits (on the fake clock): the handover uses its whole time
	cfg.Cluster = configoptional.Some(c)
	cfg.Output.ShutdownTimeout = 1 * time.Second
	cfg.Output.BatchTimeout = 0
	next := ctxBlocking{tracebuftest.NewBlocking(), new(sync.Once)}
	clk := clocktest.NewFake(t0)
	require.NoError(t, cfg.Validate())
	p, err := newProcessorWithClock(processortest.NewNopSettings(metadata.Type), cfg, next, clk)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	r := ring.New(c.Members.Static)
	var sent int
	for n := uint64(1); sent < 50; n++ {
		if r.Members()[r.Owner(ring.Hash(traceID(n)))] == self {
			require.NoError(t, p.ConsumeTraces(context.Background(), batch(errorTrace(n)...)))
			sent++
		}
	}
	require.NoError(t, p.buf.Sync(context.Background()))
	start := time.Now()
	err = p.Shutdown(context.Background())
	took := time.Since(start)
	close(next.Release)
	require.Less(t, took, 1300*time.Millisecond, "output.shutdown_timeout is 1s (err: %v)", err)
}

// TestShutdownBoundWhenNextIgnoresCtx: a next consumer that blocks and
// ignores its context held Shutdown forever: the shard waited in it, and
// Shutdown for the shard. Shutdown returns by output.shutdown_timeout (plus
// the grace the consumer is given to return) now, leaving the call blocked
// (logged), and counts what it could not hand on: the trace the consumer
// holds and the one still buffered.
func TestShutdownBoundWhenNextIgnoresCtx(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	cfg.Output.BatchTimeout = 0
	cfg.Output.ShutdownTimeout = 200 * time.Millisecond
	next := tracebuftest.NewBlocking()        // ignores ctx
	t.Cleanup(func() { close(next.Release) }) // after the harness's Shutdown
	h := newHarness(t, cfg, next)
	h.send(errorTrace(1)...)
	h.clk.Advance(time.Minute) // decided and kept: the shard blocks in next
	select {
	case <-next.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the kept trace never reached the next consumer")
	}
	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(errorTrace(2)...)))

	took, err := tracebuftest.ShutdownWithin(t, context.Background(), h.p, 5*time.Second)
	assert.Less(t, took, cfg.Output.ShutdownTimeout+time.Second)
	require.Error(t, err, "kept spans were not handed on")
	assert.Equal(t, int64(6), h.metric("otelcol_processor_tailsift_export_failures"), "both traces' spans")
}
