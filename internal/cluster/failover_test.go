package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// pairNode is a node of self (nobody listens there) and one gateway of
// gws, with handover on and unpaced, over a heldBuffer.
func pairNode(t *testing.T) (*Node, *heldBuffer, *routertest.Gateways, string) {
	t.Helper()
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addrs[0]}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	buf := &heldBuffer{}
	n, _ := runNode(t, cfg, buf, nil)
	return n, buf, gws, addrs[0]
}

func routerMemberDown(n *Node, addr string) bool {
	for _, s := range n.router.MemberStates(nil) {
		if s.Addr == addr {
			return s.Down
		}
	}
	return false
}

// TestShutdownHandoverToDeadMember: the other gateway died (still listed:
// its DNS record has not gone yet), and this one shuts down. Its handover
// used to put the buffer in the router's queue for the dead member, where
// it was dropped with the router, neither delivered nor decided here. Now
// a member known down refuses the chunk at once (the router is strict),
// which is given back; one not yet known down takes it into its queue,
// from which the router's fallback gives it back when the send fails.
func TestShutdownHandoverToDeadMember(t *testing.T) {
	for _, known := range []bool{false, true} {
		name := "death not yet noticed"
		if known {
			name = "member already marked down"
		}
		t.Run(name, func(t *testing.T) {
			n, buf, gws, other := pairNode(t)
			var w routertest.Workload
			gws.Stop(other) // the other gateway dies
			if known {
				// A misrouted request makes the router notice it.
				_, err := n.Ingest(context.Background(), encode(t, w.Batch(20, 1)), nil)
				require.NoError(t, err)
				require.Eventually(t, func() bool { return routerMemberDown(n, other) }, 10*time.Second, 10*time.Millisecond)
				// Its part for the other member comes back (the fallback)
				// a moment after the member is marked down: all 20 spans
				// here before the reset.
				require.Eventually(t, func() bool { return ingestedSpans(t, &buf.fakeBuffer) == 20 }, 10*time.Second, time.Millisecond)
				buf.mu.Lock()
				buf.ingested = nil
				buf.mu.Unlock()
			}
			buf.hold(encode(t, w.Batch(10, 2))) // 10 undecided traces, 20 spans, owned by the other now

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, n.Shutdown(ctx))

			buf.heldMu.Lock()
			held := len(buf.held)
			buf.heldMu.Unlock()
			buf.mu.Lock()
			givenBack := 0
			for _, b := range buf.ingested {
				givenBack += len(spansOf(t, b))
			}
			buf.mu.Unlock()
			require.Equal(t, 0, held, "the chunk was taken out of the buffer")
			// What is not handed over is decided here.
			require.Equal(t, 20, givenBack, "the spans taken out for handover are given back, to be decided here")
			require.Zero(t, gws.Count())
			_, again := buf.countedSpans(t)
			require.Equal(t, 20, again, "the handed-over spans given back are counted (RED) again")
		})
	}
}

// ingestedSpans is the spans buf took in.
func ingestedSpans(t *testing.T, buf *fakeBuffer) int {
	t.Helper()
	buf.mu.Lock()
	defer buf.mu.Unlock()
	n := 0
	for _, b := range buf.ingested {
		n += len(spansOf(t, b))
	}
	return n
}

// TestForwardedSpansToDeadMember: a request whose traces another gateway
// owns arrives while that gateway is dead (its death not yet in DNS). The
// router's queue takes the forwarded part; the send fails and there is no
// other member to fail over to. Those acknowledged spans used to wait in
// the dead member's queue and go when the membership dropped it; the
// router's fallback now buffers them here.
func TestForwardedSpansToDeadMember(t *testing.T) {
	n, buf, gws, other := pairNode(t)
	var w routertest.Workload
	gws.Stop(other)
	body := encode(t, w.Batch(40, 1))
	got, err := n.Ingest(context.Background(), body, nil)
	require.NoError(t, err)
	require.Equal(t, 40, got, "the request is acknowledged whole")
	require.Eventually(t, func() bool { return routerMemberDown(n, other) }, 10*time.Second, 10*time.Millisecond)

	// DNS drops the dead gateway: this one owns every trace now.
	n.setMembers([]string{n.cfg.Self})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, n.Shutdown(ctx))

	buf.mu.Lock()
	here := 0
	for _, b := range buf.ingested {
		here += len(spansOf(t, b))
	}
	buf.mu.Unlock()
	t.Logf("acknowledged 40 spans; buffered here %d; received by any gateway %d", here, gws.Count())
	require.Equal(t, 40, here+gws.Count(), "%d acknowledged spans neither buffered nor delivered", 40-here-gws.Count())
	counted, again := buf.countedSpans(t)
	assert.Equal(t, here, counted, "forwarded spans taken back are counted (RED) here, where they are buffered first")
	assert.Zero(t, again)
}

// decisionBuffer remembers one kept decision of a trace it no longer owns.
type decisionBuffer struct {
	fakeBuffer
	lists atomic.Int32
}

func (b *decisionBuffer) ForeignDecisions(context.Context, int, func(uint64) bool) (Decisions, error) {
	b.lists.Add(1)
	return Decisions{Kept: []Kept{{ID: [16]byte{1, 2, 3}, Threshold: 0}}}, nil
}

type decisionObserver struct {
	NopObserver
	handed atomic.Int64
}

func (o *decisionObserver) DecisionsHandedOver(_ context.Context, n int) { o.handed.Add(int64(n)) }

// TestDrainRetriesRefusedDecisions: the first handover of a drain finds
// the other member marked down, and its send refuses the decisions. The
// member comes back within the drain. A later sweep hands the decisions
// over; they used to be marked handed over after the first try, and went
// with the draining gateway, so that the kept trace's late spans at the
// new owner were decided afresh (dropped, unless an ERROR among them).
func TestDrainRetriesRefusedDecisions(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	other := addrs[0]
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", other}, 10*time.Second
	cfg.Handover.BytesPerSecond = 1 << 40
	buf := &decisionBuffer{}
	obs := &decisionObserver{}
	n, clk := runNode(t, cfg, buf, obs)

	gws.Stop(other) // a transient failure of the other gateway
	var w routertest.Workload
	_, err := n.Ingest(context.Background(), encode(t, w.Batch(20, 1)), nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return routerMemberDown(n, other) }, 10*time.Second, 10*time.Millisecond)

	done := make(chan struct{})
	go func() {
		n.Drain(context.Background())
		close(done)
	}()
	require.Eventually(t, func() bool { return buf.lists.Load() >= 1 }, 10*time.Second, time.Millisecond)
	gws.Start(other) // back
	require.Eventually(t, func() bool { return !routerMemberDown(n, other) }, 20*time.Second, 10*time.Millisecond,
		"the router's probe finds the member again")
	advanceUntil(t, clk, done) // the rest of the drain: 20 sweeps
	require.NoError(t, n.Shutdown(context.Background()))
	t.Logf("ForeignDecisions listed %d time(s); decisions handed over: %d", buf.lists.Load(), obs.handed.Load())
	require.Positive(t, obs.handed.Load(), "the kept decision is handed over once the member is up again")
}
