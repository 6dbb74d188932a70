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

// TestRouteNowViaChoosesNextUp: the traces of a member found down go
// where next says, not to the next member up in hash order, and those
// next sends to no member are left with ErrNoNextUp, the rest sent.
func TestRouteNowViaChoosesNextUp(t *testing.T) {
	for _, known := range []bool{false, true} {
		name := "found down by its send"
		if known {
			name = "down already"
		}
		t.Run(name, func(t *testing.T) { testRouteNowVia(t, known) })
	}
}

func testRouteNowVia(t *testing.T, known bool) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.73", "127.0.0.74", "127.0.0.75")
	gws.Stop(addrs[1])
	r := newRouterObserved(t, addrs, new(counts), func(*Settings) {})
	if known {
		require.Error(t, r.SendNow(context.Background(), addrs[1], nil))
		require.True(t, r.Down(addrs[1]))
	}
	var w routertest.Workload
	buf := encodeTraces(t, w.Batch(60, 2))
	rg := ring.New(addrs)
	dead := rg.Index(addrs[1])
	// The dead member's traces: to the member after it that is not the
	// next one up, or nowhere for every other trace.
	want := map[[16]byte]string{}
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	for _, sp := range b.Spans {
		h := ring.Hash(sp.TraceID)
		switch o := rg.Owner(h); {
		case o != dead:
			want[sp.TraceID] = rg.Members()[o]
		case sp.TraceID[0]%2 == 0:
			want[sp.TraceID] = ""
		default:
			first := rg.Next(h, func(i int) bool { return i == dead })
			want[sp.TraceID] = rg.Members()[rg.Next(h, func(i int) bool { return i == dead || i == first })]
		}
	}
	next := func(h uint64, down func(string) bool) string {
		assert.True(t, down(addrs[1]))
		for id, m := range want {
			if ring.Hash(id) == h {
				return m
			}
		}
		return ""
	}
	left := r.RouteNowVia(context.Background(), buf, nil, next)
	leftSpans := 0
	for _, l := range left {
		require.ErrorIs(t, l.Err, ErrNoNextUp, "left for another reason: %d bytes", len(l.Data))
		var lb wire.Batch
		require.NoError(t, wire.Scan(l.Data, &lb))
		for _, sp := range lb.Spans {
			assert.Empty(t, want[sp.TraceID], "trace %x left: next chose no member", sp.TraceID[:4])
			leftSpans++
		}
	}
	sent := 0
	for _, got := range gws.Snapshot() {
		for _, rc := range got {
			assert.Equal(t, want[rc.TraceID], rc.Gateway, "trace %x where next says", rc.TraceID[:4])
			sent++
		}
	}
	t.Logf("spans left %d, sent %d, of 120", leftSpans, sent)
	assert.Positive(t, leftSpans)
	assert.Equal(t, 120, leftSpans+sent, "every span sent or left")
}
