package router

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
)

// TestRouteNow: RouteNow sends each member its part at once and says what
// was not taken. A member that answers is sent its part (no queue: it has
// it when RouteNow returns); the part of a member that never answers
// comes back, without the prefix, after the send timeout; nothing is left
// in a queue to be retried.
func TestRouteNow(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.67")
	hung := startHanging(t)
	members := []string{addrs[0], hung}
	fb := &fallback{}
	r := newRouterWith(t, members, func(s *Settings) {
		s.Timeout = exporterhelper.TimeoutConfig{Timeout: 200 * time.Millisecond}
		s.Fallback = fb.take
	})
	var w routertest.Workload
	buf := encodeTraces(t, w.Batch(40, 2))
	prefix := encodeTraces(t, w.Batch(0, 0)) // empty: any bytes a TracesData may start with
	start := time.Now()
	left := r.RouteNow(context.Background(), buf, prefix)
	took := time.Since(start)
	assert.Less(t, took, 2*time.Second, "the hung member's send is given up at its timeout")

	rg := ring.New(members)
	var toHung, toUp int
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	for _, sp := range b.Spans {
		if rg.Members()[rg.Owner(ring.Hash(sp.TraceID))] == hung {
			toHung++
		} else {
			toUp++
		}
	}
	require.Positive(t, toHung)
	require.Positive(t, toUp)
	assert.Equal(t, toUp, gws.Count(), "the member that answers has its part when RouteNow returns")
	require.Len(t, left, 1)
	assert.Equal(t, hung, left[0].Member)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(left[0].Err), "%v", left[0].Err)
	var back wire.Batch
	require.NoError(t, wire.Scan(left[0].Data, &back))
	assert.Len(t, back.Spans, toHung, "the hung member's part comes back whole")
	for _, sp := range back.Spans {
		assert.Equal(t, hung, rg.Members()[rg.Owner(ring.Hash(sp.TraceID))])
	}
	_, spans := fb.counts()
	assert.Zero(t, spans, "nothing queued, nothing for the fallback")

	// A part for a member that refuses it as malformed goes again in the
	// form Downgrade gives.
	gws2, addrs2 := routertest.StartGateways(t, "127.0.0.68")
	downgraded := 0
	r2 := newRouterWith(t, addrs2, func(s *Settings) {
		s.Downgrade = func(data []byte) []byte { downgraded++; return data }
	})
	gws2.Refuse(addrs2[0], status.Error(codes.InvalidArgument, "unknown flags"))
	require.NoError(t, r2.SendNow(context.Background(), addrs2[0], buf))
	assert.Equal(t, 1, downgraded)
	assert.Equal(t, 80, gws2.Count())
	assert.Equal(t, 2, gws2.Calls(addrs2[0]), "refused once, then taken")

	// A member that is down: its part comes back, and it is marked down;
	// then no member is up for any span: nothing is sent, buf comes back
	// whole.
	gws3, addrs3 := routertest.StartGateways(t, "127.0.0.69")
	gws3.Stop(addrs3[0])
	r3 := newRouterWith(t, addrs3, func(*Settings) {})
	left = r3.RouteNow(context.Background(), buf, nil)
	require.Len(t, left, 1)
	var down wire.Batch
	require.NoError(t, wire.Scan(left[0].Data, &down))
	assert.Len(t, down.Spans, 80)
	assert.True(t, memberDown(r3, addrs3[0]), "a member found down by a send is marked down")
	left = r3.RouteNow(context.Background(), buf, nil)
	require.Len(t, left, 1)
	assert.ErrorIs(t, left[0].Err, ErrAllDown)
	assert.True(t, bytes.Equal(buf, left[0].Data), "buf whole")
}

// TestRouteNowFailsOverADeadMember: a member that refuses connections
// (killed, still in the set) is found down by its part's send, and the
// part goes to the next member up in hash order, as a queued part fails
// over; nothing is left. Its spans are counted routed once, at the member
// that took them, as re-routed.
func TestRouteNowFailsOverADeadMember(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.70", "127.0.0.71", "127.0.0.72")
	gws.Stop(addrs[1])
	obs := new(counts)
	r := newRouterObserved(t, addrs, obs, func(*Settings) {})
	var w routertest.Workload
	buf := encodeTraces(t, w.Batch(60, 2))
	rg := ring.New(addrs)
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	toDead := 0
	for _, sp := range b.Spans {
		if rg.Members()[rg.Owner(ring.Hash(sp.TraceID))] == addrs[1] {
			toDead++
		}
	}
	require.Positive(t, toDead)
	left := r.RouteNow(context.Background(), buf, nil)
	assert.Empty(t, left, "nothing left: the dead member's part went to the next member up")
	assert.True(t, memberDown(r, addrs[1]))
	assert.True(t, r.Down(addrs[1]))
	assert.Equal(t, 120, gws.Count(), "every span at a member up")
	down := func(i int) bool { return rg.Members()[i] == addrs[1] }
	for _, got := range gws.Snapshot() {
		for _, rc := range got {
			assert.Equal(t, rg.Members()[rg.Next(ring.Hash(rc.TraceID), down)], rc.Gateway, "at the next member up in hash order")
		}
	}
	assert.Equal(t, int64(120), obs.routed.Load(), "counted routed once")
	assert.Equal(t, int64(toDead), obs.rerouted.Load(), "the dead member's spans counted re-routed")
}
