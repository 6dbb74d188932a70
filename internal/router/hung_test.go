package router

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// shortRetry is exporterhelper's retry with its budget cut from 5 minutes
// to 1 s, so that a test sees within seconds what the queue does with a
// request whose budget ends.
func shortRetry() configretry.BackOffConfig {
	return configretry.BackOffConfig{
		Enabled:         true,
		InitialInterval: 50 * time.Millisecond,
		Multiplier:      1.5,
		MaxInterval:     100 * time.Millisecond,
		MaxElapsedTime:  time.Second,
	}
}

// hungSettings: sends time out after 100 ms, retried for 1 s.
func hungSettings(s *Settings) {
	s.Timeout = exporterhelper.TimeoutConfig{Timeout: 100 * time.Millisecond}
	s.Retry = shortRetry()
}

// TestHungMemberFallsBack: a gateway forwards spans to a member that
// accepts the connection and answers nothing, and no other member is up
// for them. Each send timed out, was retried until the retry budget ended
// and was dropped: Fallback (the gateway's own buffer) never saw them. The
// member is marked down after failover.timeouts sends in a row unanswered,
// and what its queue holds goes to Fallback, well within the retry budget:
// with ten sends at once, at the first time-out; with one send at a time,
// at the second; without retries, each send that times out goes to
// Fallback at once.
func TestHungMemberFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Settings)
	}{
		{name: "ten sends at once", change: func(*Settings) {}},
		{name: "one send at a time", change: func(s *Settings) {
			q := exporterhelper.NewDefaultQueueConfig()
			q.NumConsumers = 1
			s.Queue = configoptional.Some(q)
		}},
		{name: "no retries", change: func(s *Settings) {
			q := exporterhelper.NewDefaultQueueConfig()
			q.NumConsumers = 1
			s.Queue = configoptional.Some(q)
			s.Retry.Enabled = false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := &fallback{}
			hung := startHanging(t)
			r := newRouterWith(t, []string{hung}, func(s *Settings) {
				hungSettings(s)
				s.Fallback = fb.take
				tc.change(s)
			})
			var w routertest.Workload
			start := time.Now()
			for range 10 {
				require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(1, 2))))
			}
			// The retry budget is 1 s: well past it, a request is either in
			// Fallback or gone.
			ok := assert.Eventually(t, func() bool { _, spans := fb.counts(); return spans == 20 }, 4*time.Second, 5*time.Millisecond,
				"every span forwarded to the hung member is given to Fallback")
			_, spans := fb.counts()
			t.Logf("Fallback took %d of 20 spans in %v (send timeout 100 ms, retry budget 1 s); member down: %v",
				spans, time.Since(start).Round(10*time.Millisecond), memberDown(r, hung))
			if ok {
				assert.Less(t, time.Since(start), time.Second, "given to Fallback within the retry budget")
			}
			assert.True(t, memberDown(r, hung), "the member that answers nothing is marked down")
		})
	}
}

// TestHungMemberFailsOver: an agent (no Fallback) routes to two gateways,
// one of which accepts connections and answers nothing. The hung one's
// spans timed out, were retried until the retry budget ended, and were
// dropped, while the other gateway was up. It is marked down now, and its
// spans go to the other gateway, as a dead one's do.
func TestHungMemberFailsOver(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.67")
	hung := startHanging(t)
	r := newRouterWith(t, []string{addrs[0], hung}, hungSettings)
	var w routertest.Workload
	for range 10 {
		require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(10, 2))))
	}
	ok := assert.Eventually(t, func() bool { return gws.Count() == 200 }, 4*time.Second, 5*time.Millisecond,
		"every span reaches the gateway up")
	if !ok {
		t.Logf("the gateway up got %d of 200 spans within 4 s (retry budget 1 s); hung member down: %v", gws.Count(), memberDown(r, hung))
	}
	assert.True(t, memberDown(r, hung), "the member that answers nothing is marked down")
}

// flakyServer leaves every other Export call unanswered until its caller
// gives up, and answers the others at once: a busy gateway whose slowest
// answers come after the send timeout, but which answers.
type flakyServer struct {
	ptraceotlp.UnimplementedGRPCServer
	calls    atomic.Int64
	answered atomic.Int64
}

func (s *flakyServer) Export(ctx context.Context, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if s.calls.Add(1)%2 == 1 {
		<-ctx.Done()
		return ptraceotlp.NewExportResponse(), ctx.Err()
	}
	s.answered.Add(1)
	return ptraceotlp.NewExportResponse(), nil
}

// TestSlowMemberStaysUp: a member some of whose sends time out while it
// answers others is not marked down: only a member that answers nothing
// for failover.timeouts sends in a row is. Its requests that timed out are
// retried to it, and it gets them all.
func TestSlowMemberStaysUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	flaky := &flakyServer{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, flaky)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	addr := l.Addr().String()

	obs := new(counts)
	r := newRouterObserved(t, []string{addr}, obs, func(s *Settings) {
		hungSettings(s)
		s.Retry.MaxElapsedTime = 10 * time.Second
		// Each request is one send, several at once (10 consumers).
		q := exporterhelper.NewDefaultQueueConfig()
		q.Batch = configoptional.None[exporterhelper.BatchConfig]()
		s.Queue = configoptional.Some(q)
	})
	var w routertest.Workload
	for range 20 {
		require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(1, 1))))
	}
	require.Eventually(t, func() bool { return flaky.answered.Load() == 20 }, 10*time.Second, 5*time.Millisecond,
		"every request is answered in the end")
	assert.False(t, memberDown(r, addr), "a member that answers is not down")
	assert.Zero(t, obs.downs.Load(), "the member was never marked down, not even for a while")
}
