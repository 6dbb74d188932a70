package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestHandedOverSpansCountedOnce: RED counts a span where it is first
// buffered. Spans forwarded as they came (misrouted) are counted by the
// gateway that buffers them; spans handed over are not counted again,
// also when a draining gateway passes them on: the relay keeps the mark.
func TestHandedOverSpansCountedOnce(t *testing.T) {
	clk := clocktest.NewFake(time.Unix(0, 0))
	var addrs [2]string
	var srvs [2]*nodeServer
	for i := range srvs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs[i] = l.Addr().String()
		srvs[i] = &nodeServer{}
		g := grpc.NewServer()
		ptraceotlp.RegisterGRPCServer(g, srvs[i])
		go func() { _ = g.Serve(l) }()
		t.Cleanup(g.Stop)
	}
	var bufs [2]*fakeBuffer
	var nodes [2]*Node
	for i := range nodes {
		cfg := NewDefaultConfig()
		cfg.Self, cfg.Members.Static, cfg.Drain = addrs[i], addrs[:], 0
		cfg.GRPC.TLS.Insecure = true
		bufs[i] = &fakeBuffer{}
		nodes[i] = NewNode(cfg, bufs[i], Settings{
			ID: component.MustNewID("tailsift"), Telemetry: componenttest.NewNopTelemetrySettings(), Clock: clk,
		})
		srvs[i].node.Store(nodes[i])
		require.NoError(t, nodes[i].Start(context.Background(), componenttest.NewNopHost()))
		t.Cleanup(func() { require.NoError(t, nodes[i].Shutdown(context.Background())) })
	}
	draining, owner := nodes[0], bufs[1]
	draining.BeginDrain()
	var w routertest.Workload
	ctx := context.Background()

	handed := append(AppendControl(nil, &Control{Forwarded: true, HandedOver: true}), encode(t, w.Batch(10, 2))...)
	got, err := nodes[1].Ingest(ctx, handed, nil)
	require.NoError(t, err)
	require.Equal(t, 20, got)
	counted, again := owner.countedSpans(t)
	assert.Equal(t, 0, counted, "handed-over spans counted again")
	assert.Equal(t, 20, again)

	// Passed on by a gateway that drains.
	handed = append(AppendControl(nil, &Control{Forwarded: true, HandedOver: true}), encode(t, w.Batch(10, 3))...)
	_, err = draining.Ingest(ctx, handed, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, again = owner.countedSpans(t); return again == 50 }, 10*time.Second, 5*time.Millisecond,
		"relayed handed-over spans reach the owner marked handed over")
	forwarded := append(AppendControl(nil, &Control{Forwarded: true}), encode(t, w.Batch(10, 1))...)
	_, err = draining.Ingest(ctx, forwarded, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { counted, _ = owner.countedSpans(t); return counted == 10 }, 10*time.Second, 5*time.Millisecond,
		"relayed forwarded spans are counted by the owner, which buffers them first")
	counted, again = bufs[0].countedSpans(t)
	assert.Zero(t, counted+again, "the draining gateway keeps nothing")
}

// TestHandoverToOlderGateway: a gateway of a version before the
// handed-over mark refuses a control that carries it (unknown flag,
// INVALID_ARGUMENT, which is not retried): the traces of a handover to it
// during an upgrade would be lost. They are sent again marked forwarded
// only (and counted there again, as before the mark).
func TestHandoverToOlderGateway(t *testing.T) {
	n, buf, gws, other := pairNode(t)
	gws.Refuse(other, status.Error(codes.InvalidArgument, "malformed tailsift.cluster control: unknown flags 0x9"))
	var w routertest.Workload
	buf.hold(encode(t, w.Batch(10, 2)))
	n.HandOver(context.Background())
	require.Eventually(t, func() bool { return gws.Count() == 20 }, 10*time.Second, 5*time.Millisecond,
		"the handed-over traces reach the older gateway")
	assert.Equal(t, 2, gws.Calls(other), "refused once, then taken")
	counted, again := buf.countedSpans(t)
	assert.Zero(t, counted+again, "nothing given back")
}
