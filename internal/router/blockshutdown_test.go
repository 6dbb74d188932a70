package router

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestShutdownBlockOnOverflowAllDown: every member down, a small queue
// with block_on_overflow, and requests routed without a deadline wait for
// room in it (the queue's consumer holds one request in its retry
// back-off). Shutdown must keep its deadline.
func TestShutdownBlockOnOverflowAllDown(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.76", "127.0.0.77")
	for _, a := range addrs {
		gws.Stop(a)
	}
	q := exporterhelper.NewDefaultQueueConfig()
	q.Sizer, q.QueueSize, q.NumConsumers, q.BlockOnOverflow = exporterhelper.RequestSizerTypeRequests, 2, 1, true
	q.Batch = configoptional.None[exporterhelper.BatchConfig]()
	r := newRouterWith(t, addrs, func(s *Settings) { s.Queue = configoptional.Some(q) })
	var w routertest.Workload
	var wg sync.WaitGroup
	routed := make(chan struct{}, 20)
	// Without a deadline (cancelled only when the test gives up, so that
	// it ends).
	rctx, giveUp := context.WithCancel(context.Background())
	defer wg.Wait()
	defer giveUp()
	for range 20 {
		buf := encodeTraces(t, w.Batch(4, 2))
		wg.Go(func() {
			_ = r.Route(rctx, buf)
			routed <- struct{}{}
		})
	}
	// The queues fill, and the consumers hold their requests in retry
	// back-off: some Route calls wait for room.
	time.Sleep(300 * time.Millisecond)
	require.Less(t, len(routed), 20, "no Route waits for room: the test proves nothing")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(ctx) }()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("Shutdown took %v with a 300 ms deadline: %v", took, err)
		assert.Less(t, took, 2*time.Second)
	case <-time.After(10 * time.Second):
		t.Errorf("Shutdown did not return in 10 s with a 300 ms deadline; Route calls returned %d of 20", len(routed))
		giveUp()
		t.Logf("Shutdown returned once the Route calls gave up: %v", <-done)
	}
}
