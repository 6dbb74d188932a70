package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// hungPair is a node of self (nobody listens there) and a hung gateway,
// with handover on, unpaced, and handover.timeout timeout, over a
// heldBuffer holding 10 undecided traces (20 spans) the hung gateway owns.
func hungPair(t *testing.T, timeout time.Duration) (*Node, *heldBuffer, *routertest.Hung) {
	t.Helper()
	g, addr := routertest.StartHung(t, "127.0.0.1")
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addr}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = timeout
	buf := &heldBuffer{}
	n, _ := runNode(t, cfg, buf, nil)
	var w routertest.Workload
	buf.hold(encode(t, w.Batch(10, 2)))
	return n, buf, g
}

// givenBack is the spans buf took back (the traces the handover could not
// hand over, to be decided here).
func givenBack(t *testing.T, buf *heldBuffer) int {
	t.Helper()
	buf.mu.Lock()
	defer buf.mu.Unlock()
	n := 0
	for _, b := range buf.ingested {
		n += len(spansOf(t, b))
	}
	return n
}

// TestHandOverToHungMemberGivesUp: after a ring change, the handover takes
// the traces the other gateway now owns out of the buffer and sends them.
// That gateway accepts the connection and never answers. The traces must
// be handed over or given back, to be decided here, within
// handover.timeout: they are undecided (an error trace among them is kept
// only if it is decided somewhere).
func TestHandOverToHungMemberGivesUp(t *testing.T) {
	const timeout = 300 * time.Millisecond
	n, buf, g := hungPair(t, timeout)
	start := time.Now()
	n.HandOver(context.Background())
	took := time.Since(start)
	assert.Less(t, took, timeout+time.Second, "the handover keeps its timeout")
	ok := assert.Eventually(t, func() bool { return givenBack(t, buf) == 20 }, timeout+3*time.Second, 10*time.Millisecond)
	t.Logf("handover returned after %v; spans given back %v after it: %d of 20; the member was called %d times",
		took, time.Since(start)-took, givenBack(t, buf), g.Calls())
	require.True(t, ok, "the 20 spans taken out for a member that never answers are given back within 3 s of the handover's %v timeout", timeout)
	_, again := buf.countedSpans(t)
	assert.Equal(t, 20, again, "given back as spans taken in once already (not counted again by RED)")
}

// TestShutdownWithHungMember: the gateway shuts down while the member
// that owns its traces accepts the connection and never answers. Shutdown
// keeps its deadline (handover.timeout is longer), and the traces the
// handover took out are given back, to be decided here by the buffer's
// shutdown, not left with the member.
func TestShutdownWithHungMember(t *testing.T) {
	n, buf, g := hungPair(t, 10*time.Second)
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	require.NoError(t, n.Shutdown(ctx))
	took := time.Since(start)
	t.Logf("shutdown took %v with a %v deadline; spans given back: %d of 20; the member was called %d times",
		took, deadline, givenBack(t, buf), g.Calls())
	assert.Less(t, took, deadline+time.Second, "Shutdown keeps its deadline")
	assert.Equal(t, 20, givenBack(t, buf), "the traces taken out for the hung member are given back")
}

// TestDecisionsToHungMemberNotHanded: a draining gateway hands its
// decisions over at each sweep until every one went. A send to a member
// that never answers only queued them, and they counted as handed over:
// later sweeps did not send them again, and the router's queue dropped
// them after its retries (the kept trace's late spans at the new owner
// were then decided afresh). Not taken in time, they are refused now, and
// the next sweep tries again.
func TestDecisionsToHungMemberNotHanded(t *testing.T) {
	g, addr := routertest.StartHung(t, "127.0.0.1")
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addr}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = 200 * time.Millisecond
	buf := &decisionBuffer{}
	obs := &decisionObserver{}
	n, _ := runNode(t, cfg, buf, obs)
	n.BeginDrain()
	start := time.Now()
	n.HandOver(context.Background())
	took := time.Since(start)
	t.Logf("handover took %v; decisions counted handed over: %d; the member was called %d times", took, obs.handed.Load(), g.Calls())
	assert.Less(t, took, cfg.Handover.Timeout+time.Second, "the handover keeps its timeout")
	assert.Zero(t, obs.handed.Load(), "a decision the member did not take is not handed over")
	assert.False(t, decisionsSettled(n), "the next sweep hands the decisions over again")
}

// TestCountTraces: a part a split gives back holds a trace's spans under
// their scopes, not together: each trace counts once.
func TestCountTraces(t *testing.T) {
	var w routertest.Workload
	traces, spans := countTraces(encode(t, w.Batch(10, 3)))
	assert.Equal(t, 10, traces)
	assert.Equal(t, 30, spans)
}

// TestForwardedSpansToHungMember: a gateway forwards the spans an agent
// misrouted to their owner, which accepts the connection and never
// answers, and no other member is up for them. Each send timed out (5 s),
// was retried until exporterhelper's budget ended (5 minutes), and was
// dropped: the acknowledged spans were neither delivered nor buffered
// here. The router marks the owner down after two sends in a row
// unanswered, and its fallback buffers the spans here.
func TestForwardedSpansToHungMember(t *testing.T) {
	g, addr := routertest.StartHung(t, "127.0.0.1")
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addr}, 0
	buf := &heldBuffer{}
	n, _ := runNode(t, cfg, buf, nil)
	var w routertest.Workload
	start := time.Now()
	got, err := n.Ingest(context.Background(), encode(t, w.Batch(40, 1)), nil)
	require.NoError(t, err)
	require.Equal(t, 40, got, "the request is acknowledged whole")
	here := func() int { return givenBack(t, buf) }
	require.Less(t, here(), 40, "some spans are the hung member's, forwarded")
	// Two sends of 5 s and exporterhelper's first retry interval (5 s,
	// ±50 %) between them: at most 17.5 s.
	ok := assert.Eventually(t, func() bool { return here() == 40 }, 25*time.Second, 20*time.Millisecond,
		"every acknowledged span is buffered here")
	t.Logf("buffered here %d of 40 spans after %v; the member was called %d times; down: %v",
		here(), time.Since(start).Round(100*time.Millisecond), g.Calls(), routerMemberDown(n, addr))
	if ok {
		assert.True(t, routerMemberDown(n, addr), "the member that answers nothing is down")
	}
}
