package router

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// batching makes each member's queue batch parts for linger, up to minSize
// spans.
func batching(linger time.Duration, minSize int64) func(*Settings) {
	return func(s *Settings) {
		q := exporterhelper.NewDefaultQueueConfig()
		q.Batch = configoptional.Some(exporterhelper.BatchConfig{
			FlushTimeout: linger,
			Sizer:        exporterhelper.RequestSizerTypeItems,
			MinSize:      minSize,
		})
		s.Queue = configoptional.Some(q)
	}
}

// routeBatches routes n batches of the workload through r and returns the
// spans sent.
func routeBatches(t *testing.T, r *Router, n int) map[[8]byte]string {
	t.Helper()
	var w routertest.Workload
	sent := map[[8]byte]string{}
	for range n {
		td := w.Batch(6, 3)
		for id, svc := range routertest.ServiceOf(td) {
			sent[id] = svc
		}
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		require.NoError(t, r.Route(t.Context(), buf))
	}
	return sent
}

// requireDeliveredOnce checks that the gateways got every span sent, once.
func requireDeliveredOnce(t *testing.T, gw *routertest.Gateways, sent map[[8]byte]string) {
	t.Helper()
	got := gw.Snapshot()
	require.Len(t, got, len(sent))
	for id, rs := range got {
		require.Contains(t, sent, id)
		require.Len(t, rs, 1, "span %x duplicated", id)
		assert.Equal(t, sent[id], rs[0].Service)
	}
}

// TestBatchFlushedAfterLinger: parts of several routed requests wait in
// their member's batch, below its minimum size, and go out together when
// the linger ends, in fewer calls than requests.
func TestBatchFlushedAfterLinger(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.71", "127.0.0.72")
	const requests = 10
	r := newRouterWith(t, addrs, batching(300*time.Millisecond, 1<<30))
	sent := routeBatches(t, r, requests)
	// Only the linger can flush: the minimum size is never reached and
	// the router is not shut down.
	require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, sent)
	for _, a := range addrs {
		assert.Positive(t, gw.Calls(a))
		assert.Less(t, gw.Calls(a), requests, "%s got a call per request: nothing was batched", a)
	}
}

// TestBatchFlushedOnShutdown: a batch that neither its linger nor its size
// would flush yet goes out when the router shuts down.
func TestBatchFlushedOnShutdown(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.73", "127.0.0.74")
	r := newRouterWith(t, addrs, batching(time.Hour, 1<<30))
	sent := routeBatches(t, r, 5)
	assert.Zero(t, gw.Count(), "flushed before the linger or the minimum size")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	requireDeliveredOnce(t, gw, sent)
}

// TestBatchRefusedIsRetried: a member that refuses a batch with a retryable
// answer gets it again, and nothing is lost or duplicated.
func TestBatchRefusedIsRetried(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.75", "127.0.0.76")
	st, err := status.New(codes.Unavailable, "overloaded").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(10 * time.Millisecond)})
	require.NoError(t, err)
	gw.Refuse(addrs[0], st.Err(), st.Err())
	r := newRouterWith(t, addrs, func(s *Settings) {
		batching(50*time.Millisecond, 1<<30)(s)
		s.Retry.InitialInterval = 10 * time.Millisecond
	})
	sent := routeBatches(t, r, 10)
	require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, sent)
	assert.GreaterOrEqual(t, gw.Calls(addrs[0]), 3, "the two refusals and the accepted retry")
	st0 := r.state.Load()
	for _, rs := range gw.Snapshot() {
		owner := st0.members[st0.ring.Owner(ring.Hash(rs[0].TraceID))]
		assert.Equal(t, owner.addr, rs[0].Gateway, "a refused batch went elsewhere")
	}
}

// TestBatchQueueInBytes: a member queue bounded in bytes (`sizer: bytes`,
// as docs/scale-out.md suggests) takes the router's batches, which are
// still cut by items, and delivers every span once.
func TestBatchQueueInBytes(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.79", "127.0.0.80")
	r := newRouterWith(t, addrs, func(s *Settings) {
		batching(50*time.Millisecond, 1<<30)(s)
		q := s.Queue.Get()
		q.Sizer = exporterhelper.RequestSizerTypeBytes
		q.QueueSize = 1 << 20
	})
	sent := routeBatches(t, r, 10)
	require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, sent)
}
