package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// The bounds of a handover whose member set changes under it: max_bytes,
// maxMoves, shutdown, a member that refuses for another reason, and what
// its self-metrics count.

// TestHandOverMoveKeepsMaxBytes: max_bytes bounds the bytes a handover
// moves. What a member that left did not take was not moved, and is taken
// out again for the new owners: it must not use up max_bytes a second
// time, which left the rest here, neither handed over nor counted.
func TestHandOverMoveKeepsMaxBytes(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	total := 0
	for _, enc := range buf.traces {
		total += len(enc)
	}
	a, g := startGate(t, true), startGate(t, false)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, func(h *HandoverConfig) { h.MaxBytes = int64(total + total/2) }, a.addr)
	n.BeginDrain()
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self, g.addr})
	waitDone(t, done, 15*time.Second)
	count := assertWhole(t, td, 2, self, []string{g.addr}, buf, a, g)
	t.Logf("buffer %d B, max_bytes %d B: traces at the new owner %d of 20, left here %d, counted decided here %d",
		total, total+total/2, count[g.addr], count["here"], obs.local.Load())
	assert.Equal(t, 20, count[g.addr], "every trace at the new owner: the buffer is within max_bytes")
}

// runNodeLogged is runNode with the node's log recorded.
func runNodeLogged(t *testing.T, cfg Config, buf Buffer, obs Observer) (*Node, *clocktest.Fake, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	tel := componenttest.NewNopTelemetrySettings()
	tel.Logger = zap.New(core)
	cfg.GRPC.TLS.Insecure = true
	clk := clocktest.NewFake(time.Unix(0, 0))
	n := NewNode(cfg, buf, Settings{ID: component.MustNewID("tailsift"), Telemetry: tel, Clock: clk, Observer: obs})
	require.NoError(t, n.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, n.Shutdown(context.Background())) })
	return n, clk, logs
}

// TestHandOverMaxMoves: the member set changes five times under one
// handover, each time while the send to the member it had waits. It
// follows four changes; at the fifth what the last member did not take is
// given back here, counted decided here, and the warning says why (the
// member set kept changing), since those traces are then decided from
// part of their spans.
func TestHandOverMaxMoves(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	var gates [maxMoves + 2]*gate
	for i := range gates {
		gates[i] = startGate(t, true)
	}
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, []string{self, gates[0].addr}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = 20 * time.Second
	obs := &countingObserver{}
	n, _, logs := runNodeLogged(t, cfg, buf, obs)
	n.BeginDrain()
	done := handOverAsync(n)
	for i := range maxMoves + 1 {
		require.Eventually(t, func() bool { return gates[i].calls.Load() > 0 }, 10*time.Second, time.Millisecond,
			"the handover sends to member %d", i)
		n.setMembers([]string{self, gates[i+1].addr})
	}
	waitDone(t, done, 15*time.Second)
	assert.Zero(t, gates[maxMoves+1].calls.Load(), "no send after %d changes", maxMoves)
	defer gates[maxMoves+1].hold.Store(false) // the shutdown's handover at the end need not wait
	// Here, whole, though the last set gives them to gates[maxMoves+1]:
	// decided here, from the spans that came before the changes.
	here := 0
	for id, at := range where(td, buf, gates[:]...) {
		assert.Equal(t, map[string]int{"here": 2}, at, "trace %x", id[:4])
		here += at["here"] / 2
	}
	t.Logf("traces here %d, counted decided here %d", here, obs.local.Load())
	assert.Equal(t, 20, here, "every trace back here, whole")
	assert.Equal(t, int64(20), obs.local.Load(), "counted decided here")
	warned := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("Traces not handed over").All()
	require.Len(t, warned, 1)
	assert.Equal(t, int64(maxMoves), warned[0].ContextMap()["ring_changes"],
		"the warning says the member set changed %d times: %v", maxMoves, warned[0].ContextMap())
}

// TestHandOverShutdownDuringMove: the gateway shuts down while its
// handover follows a member that left to one that does not answer
// either. Shutdown keeps its deadline, and every trace is either taken by
// a member or back here whole, to be decided here.
func TestHandOverShutdownDuringMove(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	a, b := startGate(t, true), startGate(t, true)
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, []string{self, a.addr}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = 20 * time.Second
	n, clk := runNode(t, cfg, buf, nil)
	n.setMembers([]string{self, a.addr}) // a ring change: the loop hands over after settle
	require.Eventually(t, func() bool {
		clk.Advance(cfg.Handover.Settle)
		return a.calls.Load() > 0
	}, 10*time.Second, time.Millisecond, "the loop's handover sends to a")
	n.setMembers([]string{self, b.addr})
	require.Eventually(t, func() bool { return b.calls.Load() > 0 }, 10*time.Second, time.Millisecond, "it follows a to b")
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	require.NoError(t, n.Shutdown(ctx))
	took := time.Since(start)
	t.Logf("shutdown took %v of its %v", took, deadline)
	assert.Less(t, took, deadline+500*time.Millisecond, "shutdown keeps its deadline")
	count := assertWhole(t, td, 2, self, []string{self}, buf, a, b)
	assert.Equal(t, 20, count["here"], "every trace back here, whole")
}

// TestHandOverRefusedWithoutMove: the member refuses the send for another
// reason than leaving (here INTERNAL) and the set does not change: the
// traces are given back here whole, counted decided here, and the
// handover stops (as before ringMoved).
func TestHandOverRefusedWithoutMove(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	g := startGate(t, false)
	refused := status.Error(codes.Internal, "no")
	g.refuse.Store(&refused)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, g.addr)
	n.BeginDrain()
	start := time.Now()
	n.HandOver(context.Background())
	t.Logf("handover took %v; member called %d times", time.Since(start), g.calls.Load())
	count := assertWhole(t, td, 2, self, []string{self}, buf, g)
	assert.Equal(t, 20, count["here"])
	assert.Equal(t, int64(20), obs.local.Load())
}

// decisionsOf is a buffer that remembers kept decisions of traces it no
// longer owns.
type decisionsOf struct {
	fakeBuffer
	kept  []Kept
	lists atomic.Int32
}

func (b *decisionsOf) ForeignDecisions(context.Context, int, func(uint64) bool) (Decisions, error) {
	b.lists.Add(1)
	return Decisions{Kept: append([]Kept(nil), b.kept...)}, nil
}

// TestHandOverMoveResendsDecisions: a member leaves while it holds the
// decisions sent to it, and another joins. The decisions are sent again
// to the owners in the new set, but only those not yet there: a member
// that stayed gets none of its own again. cluster_decisions_handed_over
// counts each decision once per member that took it (those b owned
// before and g owns now count twice: b took them, then g).
func TestHandOverMoveResendsDecisions(t *testing.T) {
	a, b, g := startGate(t, true), startGate(t, false), startGate(t, false)
	buf := &decisionsOf{}
	for i := range 40 {
		buf.kept = append(buf.kept, Kept{ID: [16]byte{byte(i), 1, 2, 3}})
	}
	obs := &decisionObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr, b.addr)
	n.BeginDrain()
	r := ring.New([]string{a.addr, b.addr})
	atB := 0
	for _, k := range buf.kept {
		if r.Members()[r.Owner(ring.Hash(k.ID))] == b.addr {
			atB++
		}
	}
	require.Positive(t, atB, "b owns some decisions")
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self, b.addr, g.addr})
	waitDone(t, done, 15*time.Second)
	took := 0
	twice := 0
	for _, gt := range []*gate{a, b, g} {
		for id, c := range gt.decisions() {
			took++ // once per member that took it
			if c > 1 {
				twice++
				t.Errorf("decision %x taken %d times by %s", id[:4], c, gt.addr)
			}
		}
	}
	t.Logf("decisions: %d, %d of them b's; counted handed over %d; taken by the members %d (decision, member) pairs, of which taken twice %d; calls a %d, b %d, g %d; listed %d times",
		len(buf.kept), atB, obs.handed.Load(), took, twice, a.calls.Load(), b.calls.Load(), g.calls.Load(), buf.lists.Load())
	assert.Positive(t, g.calls.Load(), "the new owner gets what a did not take")
	assert.Equal(t, int64(took), obs.handed.Load(), "counted once per member that took a decision")
	r1 := ring.New([]string{b.addr, g.addr})
	atB1, atG1 := b.decisions(), g.decisions()
	for _, k := range buf.kept {
		at := atG1
		if r1.Members()[r1.Owner(ring.Hash(k.ID))] == b.addr {
			at = atB1
		}
		assert.Equal(t, 1, at[k.ID], "decision %x at its owner in the new set", k.ID[:4])
	}
	assert.True(t, decisionsSettled(n), "every decision went")
}

// TestHandOverMoveAfterTakenNotAnswered: the member that leaves took the
// traces, and its answer was lost when its connection closed. The
// handover cannot tell: it sends them again to the new owner, and each
// trace is then at two gateways (delivery at least once, as for a send
// that timed out). Each copy is whole: two decisions on all the spans
// of that moment, not a split; a draining member passes its copy on to
// the same new owner, which drops the duplicate spans of a kept trace.
func TestHandOverMoveAfterTakenNotAnswered(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	a, g := startGate(t, true), startGate(t, false)
	a.takeThenHold.Store(true)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr)
	n.BeginDrain()
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self, g.addr})
	waitDone(t, done, 15*time.Second)
	twice := 0
	for id, at := range where(td, buf, a, g) {
		assert.Equal(t, 2, at[g.addr], "trace %x whole at the new owner", id[:4])
		assert.Contains(t, []int{0, 2}, at[a.addr], "trace %x whole or absent at the member that left", id[:4])
		assert.Zero(t, at["here"], "trace %x", id[:4])
		if at[a.addr] > 0 {
			twice++
		}
	}
	t.Logf("traces at both the member that left and the new owner: %d of 20; counted handed over %d", twice, obs.handed.Load())
	assert.Equal(t, 20, twice, "delivered twice: the member took them, its answer was lost")
	assert.Equal(t, int64(20), obs.handed.Load(), "counted handed over once")
}

// TestHandOverLastOtherLeaves: the only other member leaves during the
// handover and this gateway is alone: it owns every trace again, and
// what the member did not take is decided here, whole (no other gateway
// holds a span of it), counted decided here.
func TestHandOverLastOtherLeaves(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	a := startGate(t, true)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr)
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self})
	waitDone(t, done, 15*time.Second)
	count := assertWhole(t, td, 2, self, []string{self}, buf, a)
	assert.Equal(t, 20, count["here"])
	assert.Positive(t, obs.local.Load(), "a's traces counted decided here")
}

// TestHandOverDecisionsAfterAdd: a member joins while the handover's
// decisions wait for their turn at bytes_per_second. The decisions of the
// traces it owns now must reach it: its late spans (the agents switch to
// it) would otherwise be decided afresh, and a kept trace's late spans
// without an ERROR dropped, the kept trace left incomplete.
func TestHandOverDecisionsAfterAdd(t *testing.T) {
	a, g := startGate(t, false), startGate(t, false)
	buf := &decisionsOf{}
	for i := range 40 {
		buf.kept = append(buf.kept, Kept{ID: [16]byte{byte(i), 1, 2, 3}})
	}
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, []string{self, a.addr}, 0
	cfg.Handover.BytesPerSecond = 16 << 10 // each request of decisions waits on the fake clock
	cfg.Handover.Timeout = 20 * time.Second
	n, clk := runNode(t, cfg, buf, nil)
	n.BeginDrain()
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return buf.lists.Load() > 0 }, 10*time.Second, time.Millisecond, "decisions listed")
	n.setMembers([]string{self, a.addr, g.addr})
	for {
		select {
		case <-done:
		default:
			clk.Advance(10 * time.Millisecond)
			time.Sleep(time.Millisecond) // let the paced send go
			continue
		}
		break
	}
	r := ring.New([]string{a.addr, g.addr})
	atG, missing := 0, 0
	got := g.decisions()
	for _, k := range buf.kept {
		if r.Members()[r.Owner(ring.Hash(k.ID))] != g.addr {
			continue
		}
		atG++
		if got[k.ID] == 0 {
			missing++
		}
	}
	require.Positive(t, atG, "the new member owns some decisions")
	t.Logf("decisions the new member owns: %d, of which it did not get %d", atG, missing)
	assert.Zero(t, missing, "every decision at its owner in the new set")
}
