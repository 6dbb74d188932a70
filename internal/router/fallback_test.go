package router

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
)

// hangingServer answers no Export call: each waits until its caller gives
// up, as a wedged gateway or a black-holed address would.
type hangingServer struct {
	ptraceotlp.UnimplementedGRPCServer
}

func (*hangingServer) Export(ctx context.Context, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	<-ctx.Done()
	return ptraceotlp.NewExportResponse(), ctx.Err()
}

func startHanging(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &hangingServer{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

// fallback records what a router's Fallback takes.
type fallback struct {
	mu       sync.Mutex
	requests int
	spans    int
}

func (f *fallback) take(_ context.Context, data []byte) error {
	var b wire.Batch
	if err := wire.Scan(data, &b); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.spans += len(b.Spans)
	return nil
}

func (f *fallback) counts() (requests, spans int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, f.spans
}

func encodeTraces(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

func memberDown(r *Router, addr string) bool {
	for _, s := range r.MemberStates(nil) {
		if s.Addr == addr {
			return s.Down
		}
	}
	return false
}

// hangingRouter is a router of one member that answers nothing, with the
// send timeout timeout and fb's take as Fallback (none when fb is nil),
// holding requests requests of one span each.
func hangingRouter(t *testing.T, timeout time.Duration, requests int, fb *fallback) *Router {
	t.Helper()
	r := newRouterWith(t, []string{startHanging(t)}, func(s *Settings) {
		s.Timeout = exporterhelper.TimeoutConfig{Timeout: timeout}
		if fb != nil {
			s.Fallback = fb.take
		}
	})
	var w routertest.Workload
	for range requests {
		require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(1, 1))))
	}
	return r
}

// TestShutdownKeepsItsDeadline: exporterhelper's in-memory queue sends all
// it holds at shutdown, one try each, whatever the context says. With a
// member that answers nothing, 40 queued requests, 10 consumers and a 1 s
// send timeout, that took 4 s past a 200 ms deadline (with the defaults,
// 1000 requests and 5 s, up to 500 s). Shutdown now closes the connection
// at the deadline: the sends left fail at once, go to Fallback when there
// is one, and Shutdown says what it did not send.
func TestShutdownKeepsItsDeadline(t *testing.T) {
	for _, withFallback := range []bool{false, true} {
		name := "no fallback"
		if withFallback {
			name = "fallback"
		}
		t.Run(name, func(t *testing.T) {
			fb := &fallback{}
			if !withFallback {
				fb = nil
			}
			r := hangingRouter(t, time.Second, 40, fb)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := r.Shutdown(ctx)
			took := time.Since(start)
			require.Less(t, took, 900*time.Millisecond, "Shutdown took %v with a 200 ms deadline", took)
			require.ErrorContains(t, err, "not sent by the deadline")
			if withFallback {
				requests, spans := fb.counts()
				assert.Equal(t, 40, spans, "every span queued went to the fallback (%d requests)", requests)
			}
		})
	}
}

// TestShutdownFallsBackWhatTimesOut: with a deadline longer than a send's
// timeout, the sends to a member that answers nothing time out before it.
// exporterhelper has stopped retrying by then: what timed out used to be
// dropped. It falls back now, and Shutdown returns within its deadline.
func TestShutdownFallsBackWhatTimesOut(t *testing.T) {
	fb := &fallback{}
	r := hangingRouter(t, 100*time.Millisecond, 20, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	_, spans := fb.counts()
	assert.Equal(t, 20, spans, "every span queued went to the fallback")
}

// TestFallbackTakesWhatNoMemberCan: a request queued for a member that
// turns out down, with no other member up for it, goes to Fallback rather
// than wait in the dead member's queue to be dropped with it. That holds
// for a request without spans too (a gateway's handed-over decisions): a
// failover finds no member for it, and it used to be reported sent.
func TestFallbackTakesWhatNoMemberCan(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.63")
	dead := addrs[0]
	gws.Stop(dead)
	fb := &fallback{}
	r := newRouterWith(t, addrs, func(s *Settings) { s.Fallback = fb.take })
	var w routertest.Workload
	require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(10, 2))), "queued: not known down yet")
	require.Eventually(t, func() bool { return memberDown(r, dead) }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { _, spans := fb.counts(); return spans == 20 }, 10*time.Second, 5*time.Millisecond)

	// A request without spans, queued while the member still looked up.
	gws2, addrs2 := routertest.StartGateways(t, "127.0.0.64", "127.0.0.65")
	dead2, up := addrs2[0], addrs2[1]
	gws2.Stop(dead2)
	fb2 := &fallback{}
	r2 := newRouterWith(t, addrs2, func(s *Settings) { s.Fallback = fb2.take })
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().Resource().Attributes().PutEmptyBytes("tailsift.cluster").FromRaw([]byte{1, 1, 1, 7, 0})
	require.NoError(t, r2.Send(context.Background(), dead2, encodeTraces(t, td), 0))
	require.Eventually(t, func() bool { requests, _ := fb2.counts(); return requests == 1 }, 10*time.Second, 5*time.Millisecond,
		"the request without spans goes to the fallback")
	assert.Zero(t, gws2.Calls(up), "nothing was sent to the member up: it does not own these decisions")
}

// TestStrictRoute: with Strict, Route refuses (ErrAllDown) what has no
// member up, and queues nothing: the caller keeps it.
func TestStrictRoute(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.66")
	gws.Stop(addrs[0])
	fb := &fallback{}
	r := newRouterWith(t, addrs, func(s *Settings) { s.Strict, s.Fallback = true, fb.take })
	var w routertest.Workload
	require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(1, 1))), "not known down yet: queued")
	require.Eventually(t, func() bool { return memberDown(r, addrs[0]) }, 10*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, r.Route(context.Background(), encodeTraces(t, w.Batch(3, 1))), ErrAllDown)
	require.Eventually(t, func() bool { _, spans := fb.counts(); return spans == 1 }, 10*time.Second, 5*time.Millisecond,
		"only the span queued before the member was known down reaches the fallback")
}
