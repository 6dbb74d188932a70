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
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/tracebuf"
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
	var buf []byte
	var err error
	switch r := req.(type) {
	case ptraceotlp.ExportRequest:
		buf, err = r.MarshalProto()
	case interface {
		SizeProto() int
		MarshalProto([]byte) int
	}: // the generated message pdata wraps
		buf = make([]byte, r.SizeProto())
		buf = buf[len(buf)-r.MarshalProto(buf):]
	default:
		h.mu.Lock()
		panic(fmt.Sprintf("%T", req))
		h.mu.Unlock()
	}
	{
		if err == nil && buf != nil {
			var b wire.Batch
			if wire.Scan(buf, &b) == nil {
				w := tracebuf.QueueWeight(len(buf), len(b.Spans), len(b.Scopes))
				h.mu.Lock()
				h.weight = max(h.weight, w)
				h.mu.Unlock()
			}
		}
	}
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
