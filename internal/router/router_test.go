package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counts is an Observer that counts.
type counts struct{ routed, rerouted, up, ups, downs, members, oversized atomic.Int64 }

func (c *counts) Routed(_ context.Context, _ string, spans, rerouted int) {
	c.routed.Add(int64(spans))
	c.rerouted.Add(int64(rerouted))
}
func (c *counts) MembersUp(d int) {
	c.up.Add(int64(d))
	if d < 0 {
		c.downs.Add(int64(-d))
	} else {
		c.ups.Add(int64(d))
	}
}
func (c *counts) Members(d int) { c.members.Add(int64(d)) }
func (c *counts) Oversized(_ context.Context, _ string, spans int) {
	c.oversized.Add(int64(spans))
}

// newRouter starts a router on the members addrs, stopped when the test ends.
func newRouter(t *testing.T, addrs []string) *Router {
	t.Helper()
	return newRouterWith(t, addrs, func(*Settings) {})
}

// newRouterWith is newRouter with the settings changed by change.
func newRouterWith(t *testing.T, addrs []string, change func(*Settings)) *Router {
	t.Helper()
	return newRouterObserved(t, addrs, new(counts), change)
}

// newRouterObserved is newRouterWith telling obs what it does.
func newRouterObserved(t *testing.T, addrs []string, obs Observer, change func(*Settings)) *Router {
	t.Helper()
	grpc := configgrpc.NewDefaultClientConfig()
	grpc.TLS.Insecure = true
	set := exportertest.NewNopSettings(component.MustNewType("tailsift"))
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	cfg := Settings{
		GRPC:     grpc,
		Failover: FailoverConfig{Attempts: 2, Backoff: 10 * time.Millisecond, ProbeInterval: 20 * time.Millisecond, Timeouts: 2},
		Timeout:  exporterhelper.NewDefaultTimeoutConfig(),
		Queue:    configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		Retry:    configretry.NewDefaultBackOffConfig(),
	}
	change(&cfg)
	r := New(set, cfg, obs)
	r.Start(componenttest.NewNopHost())
	r.SetMembers(addrs)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

// TestMembersChangeWhileRouting changes the member set while batches are
// routed: a part routed to a member that left in the meantime is routed
// again on the new set, and nothing is lost or refused.
func TestMembersChangeWhileRouting(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.51", "127.0.0.52", "127.0.0.53")
	e := newRouter(t, addrs)

	sets := [][]string{addrs[:2], addrs, addrs[1:], addrs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			e.SetMembers(sets[i%len(sets)])
		}
	}()
	sent := routeBatches(t, e, 300)
	<-done
	require.Eventually(t, func() bool { return gw.Count() >= len(sent) }, 10*time.Second, 5*time.Millisecond)
	for id, rs := range gw.Snapshot() {
		_, ok := sent[id]
		require.True(t, ok)
		require.Len(t, rs, 1, "span %x duplicated", id)
	}
}

// TestRouteOnStaleSet routes a batch on a member set that has just been
// replaced, as a batch does when the set changes while it is being routed:
// the parts of members that left go to the new set instead of failing.
func TestRouteOnStaleSet(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.61", "127.0.0.62")
	e := newRouter(t, addrs)

	stale := e.state.Load()
	e.SetMembers(addrs[:1])
	e.retiring.Wait() // the member that left has shut its queue

	var w routertest.Workload
	td := w.Batch(20, 3)
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	spans, _, err := e.route(t.Context(), stale, buf, &targets{ring: stale.ring, down: stale.down})
	require.NoError(t, err)
	assert.Equal(t, td.SpanCount(), spans)
	require.Eventually(t, func() bool { return gw.Count() == td.SpanCount() }, 10*time.Second, 5*time.Millisecond)
	for _, rs := range gw.Snapshot() {
		assert.Equal(t, addrs[0], rs[0].Gateway)
	}
}

func TestHoldDown(t *testing.T) {
	const i = time.Second
	tests := []struct {
		name        string
		prev, upFor time.Duration
		want        time.Duration
	}{
		{name: "first time down", prev: 0, upFor: time.Hour, want: i},
		{name: "down again long after", prev: 8 * i, upFor: 10 * i, want: i},
		{name: "flapping doubles", prev: i, upFor: 2 * i, want: 2 * i},
		{name: "flapping again", prev: 4 * i, upFor: i, want: 8 * i},
		{name: "bounded", prev: 32 * i, upFor: i, want: 32 * i},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, holdDown(i, tt.prev, tt.upFor))
		})
	}
}

func TestMayWait(t *testing.T) {
	blocking := exporterhelper.NewDefaultQueueConfig()
	blocking.BlockOnOverflow = true
	waiting := exporterhelper.NewDefaultQueueConfig()
	waiting.WaitForResult = true
	tests := []struct {
		name  string
		queue configoptional.Optional[exporterhelper.QueueBatchConfig]
		want  bool
	}{
		{name: "refuses when full", queue: configoptional.Some(exporterhelper.NewDefaultQueueConfig())},
		{name: "block on overflow", queue: configoptional.Some(blocking), want: true},
		{name: "wait for result", queue: configoptional.Some(waiting), want: true},
		{name: "no queue: sends in the call", queue: configoptional.None[exporterhelper.QueueBatchConfig](), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(exportertest.NewNopSettings(component.MustNewType("tailsift")), Settings{Queue: tt.queue}, new(counts))
			assert.Equal(t, tt.want, r.MayWait())
		})
	}
}

// TestRouteEncoded: with one member, a buffer's output request goes to it
// whole, every span once, counted as routed; over the cap, or with more
// members, it is split as Route splits it.
func TestRouteEncoded(t *testing.T) {
	var w routertest.Workload
	encode := func(traces, spans int) ([]byte, int) {
		td := w.Batch(traces, spans)
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		return buf, td.SpanCount()
	}
	t.Run("one member", func(t *testing.T) {
		gw, addrs := routertest.StartGateways(t, "127.0.0.71")
		obs := new(counts)
		e := newRouterObserved(t, addrs, obs, func(*Settings) {})
		buf, n := encode(30, 4)
		keep := append([]byte(nil), buf...)
		require.NoError(t, e.RouteEncoded(t.Context(), buf, n))
		clear(buf) // the caller's again: the router copied it
		require.Eventually(t, func() bool { return gw.Count() == n }, 10*time.Second, 5*time.Millisecond)
		assert.Equal(t, int64(n), obs.routed.Load())
		assert.Equal(t, 1, gw.Calls(addrs[0]), "one request, as it came")
		sent, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(keep)
		require.NoError(t, err)
		got := gw.Snapshot()
		for _, rs := range sent.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					assert.Len(t, got[sp.SpanID()], 1, "span %v", sp.SpanID())
				}
			}
		}
	})
	t.Run("over the cap", func(t *testing.T) {
		gw, addrs := routertest.StartGateways(t, "127.0.0.72")
		buf, n := encode(30, 4)
		e := newRouterWith(t, addrs, func(s *Settings) { s.MaxRequestBytes = len(buf) / 3 })
		require.NoError(t, e.RouteEncoded(t.Context(), buf, n))
		require.Eventually(t, func() bool { return gw.Count() == n }, 10*time.Second, 5*time.Millisecond)
		assert.GreaterOrEqual(t, gw.Calls(addrs[0]), 3, "cut to fit max_request_bytes")
	})
	t.Run("two members", func(t *testing.T) {
		gw, addrs := routertest.StartGateways(t, "127.0.0.73", "127.0.0.74")
		e := newRouter(t, addrs)
		buf, n := encode(30, 4)
		require.NoError(t, e.RouteEncoded(t.Context(), buf, n))
		require.Eventually(t, func() bool { return gw.Count() == n }, 10*time.Second, 5*time.Millisecond)
		rg := ring.New(addrs)
		for _, rs := range gw.Snapshot() {
			require.Len(t, rs, 1)
			assert.Equal(t, rg.Members()[rg.Owner(ring.Hash(rs[0].TraceID))], rs[0].Gateway, "each trace at its owner")
		}
	})
}
