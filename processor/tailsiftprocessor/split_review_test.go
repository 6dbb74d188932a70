package tailsiftprocessor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/internal/wire"
)

// heaviest records the queue weight (wire.Scan and tracebuf.QueueWeight,
// as the receiving gateway's buffer counts it) of the heaviest request a
// gateway received.
type heaviest struct {
	mu     sync.Mutex
	weight int64
}

func (h *heaviest) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	// The generated message pdata wraps, which encodes itself backwards
	// from the end of the buffer it is given.
	r, ok := req.(interface {
		SizeProto() int
		MarshalProto([]byte) int
	})
	if !ok {
		return nil, fmt.Errorf("a request of type %T this test cannot weigh", req)
	}
	buf := make([]byte, r.SizeProto())
	buf = buf[len(buf)-r.MarshalProto(buf):]
	var b wire.Batch
	if err := wire.Scan(buf, &b); err != nil {
		return nil, err
	}
	w := tracebuf.QueueWeight(len(buf), len(b.Spans), len(b.Scopes))
	h.mu.Lock()
	h.weight = max(h.weight, w)
	h.mu.Unlock()
	return next(ctx, req)
}

func (h *heaviest) get() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.weight
}

// A client's batch heavier than the queue, through a gateway of a tier
// whose members have the same buffer.max_queued_bytes: the parts the
// gateway forwards to their owners each fit the owner's queue. The owner
// takes forwarded spans in whole, never split and never refused for their
// weight (IngestForwarded), counting a request heavier than its queue as
// the whole queue: a part heavier than the queue would hold more than the
// budget there. Before the split moved into the buffer, the processor cut
// the batch before the cluster node, and each part forwarded weighed at
// most a quarter of the queue.
func TestOverBudgetBatchForwardedPartsFitPeerQueue(t *testing.T) {
	var peer heaviest
	gws, addrs := routertest.StartGatewaysWith(t, []grpc.ServerOption{grpc.UnaryInterceptor(peer.intercept)}, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = self, []string{self, addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	h := newHarness(t, cfg, nil)

	specs := append(overBudget(), overBudgetFrom(100)...)
	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(specs...)))
	require.Eventually(t, func() bool { return gws.Count() > 0 }, 10*time.Second, 5*time.Millisecond)
	h.advance(time.Minute)
	require.Positive(t, peer.get(), "nothing forwarded: nothing to check")
	assert.LessOrEqual(t, peer.get(), int64(cfg.Buffer.MaxQueuedBytes),
		"a forwarded part weighing %d (%.2f× the peer's buffer.max_queued_bytes)", peer.get(), float64(peer.get())/float64(cfg.Buffer.MaxQueuedBytes))
}

// overBudgetFrom is overBudget with trace numbers from first on.
func overBudgetFrom(first uint64) []spanSpec {
	specs := overBudget()
	for i := range specs {
		specs[i].Trace += first - 1
	}
	return specs
}

// clusterHarness is a processor in a tier of two: itself and a recording
// gateway, with a 1 MiB queue; next, when not nil, is its next consumer.
func clusterHarness(t *testing.T, shards int, next consumer.Traces) (*harness, *routertest.Gateways, *ring.Ring, string) {
	t.Helper()
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := testConfig()
	cfg.Shards = shards
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	cfg.Output.BatchTimeout = 0
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = self, []string{self, addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	return newHarness(t, cfg, next), gws, ring.New(c.Members.Static), self
}

// With a cluster, an over-budget batch with spans of bad IDs among its
// pieces: every span is counted once, forwarded, taken in or refused
// (invalid), and the batch is answered as bad data whose message counts
// the spans rejected.
func TestOverBudgetBatchThroughGatewayWithInvalidSpans(t *testing.T) {
	h, gws, _, _ := clusterHarness(t, 2, nil)
	td := batch(append(overBudget(), overBudgetFrom(100)...)...)
	bad := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
			if sp.SpanID()[7]%97 == 5 {
				sp.SetSpanID(pcommon.SpanID{})
				bad++
			}
		}
	}
	require.Positive(t, bad)
	err := h.p.ConsumeTraces(context.Background(), td)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), fmt.Sprintf("rejected %d of 16000 spans", bad))
	require.NoError(t, h.p.buf.Sync(context.Background()))
	received := h.metric("otelcol_processor_tailsift_spans_received")
	require.Eventually(t, func() bool { return int64(gws.Count())+received == int64(16000-bad) }, 10*time.Second, 5*time.Millisecond,
		"forwarded %d + taken in %d of %d valid spans", gws.Count(), received, 16000-bad)
	h.advance(time.Minute) // decided: nothing to hand over at shutdown
	h.advance(time.Minute)
	assert.Equal(t, int64(bad), h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "invalid")))
}

// With a cluster, an over-budget batch refused part-way (the shard
// stalled, a piece found no room): retryable, and every span counted
// once, forwarded, taken in or refused (queue_full), the pieces never
// offered included.
func TestOverBudgetBatchThroughGatewayRefusedPartWay(t *testing.T) {
	next := tracebuftest.NewBlocking()
	h, gws, r, self := clusterHarness(t, 1, next)
	released := false
	defer func() {
		if !released {
			close(next.Release)
		}
	}()
	stall := uint64(1000)
	for r.Members()[r.Owner(ring.Hash(traceID(stall)))] != self {
		stall++
	}
	h.send(spanSpec{Trace: stall, Span: 1, Status: ptrace.StatusCodeError})
	h.clk.Advance(time.Minute)
	<-next.Entered
	before := h.metric("otelcol_processor_tailsift_spans_received")

	specs := append(overBudget(), overBudgetFrom(100)...)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := h.p.ConsumeTraces(ctx, batch(specs...))
	cancel()
	require.Error(t, err, "the stalled shard left room for the whole batch")
	assert.ErrorIs(t, err, tracebuf.ErrQueueFull)
	assert.False(t, consumererror.IsPermanent(err))
	received := h.metric("otelcol_processor_tailsift_spans_received") - before
	queueFull := h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "queue_full"))
	require.Positive(t, received, "no piece taken before the refusal: nothing to check")
	forwarded := h.metric("otelcol_processor_tailsift_cluster_spans_forwarded")
	assert.Equal(t, int64(len(specs)), forwarded+received+queueFull,
		"each span counted once: forwarded %d, taken in %d, refused %d", forwarded, received, queueFull)
	require.Eventually(t, func() bool { return int64(gws.Count()) == forwarded }, 10*time.Second, 5*time.Millisecond)
	close(next.Release)
	released = true
	h.advance(time.Minute) // decided: nothing to hand over at shutdown
	h.advance(time.Minute)
}
