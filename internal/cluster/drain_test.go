package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// heldBuffer holds foreign traces that a TakeForeign takes out whole.
type heldBuffer struct {
	fakeBuffer
	heldMu sync.Mutex
	held   [][]byte // encoded TracesData, 10 traces of 2 spans each
	takes  atomic.Int32
}

func (b *heldBuffer) hold(traces []byte) {
	b.heldMu.Lock()
	b.held = append(b.held, traces)
	b.heldMu.Unlock()
}

func (b *heldBuffer) TakeForeign(context.Context, int, func(uint64) bool, int) (Foreign, bool, error) {
	b.takes.Add(1)
	b.heldMu.Lock()
	defer b.heldMu.Unlock()
	if len(b.held) == 0 {
		return Foreign{}, false, nil
	}
	f := Foreign{Traces: b.held[0], NTraces: 10, Spans: 20}
	b.held = b.held[1:]
	return f, len(b.held) > 0, nil
}

// drainNode is a node of self and one gateway, with handover on and
// unpaced, that drains for drain.
func drainNode(t *testing.T, drain time.Duration) (*Node, *heldBuffer, *routertest.Gateways, *clocktest.Fake) {
	t.Helper()
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addrs[0]}, drain
	cfg.Handover.BytesPerSecond = 1 << 40
	buf := &heldBuffer{}
	n, clk := runNode(t, cfg, buf, nil)
	return n, buf, gws, clk
}

// TestDrainHandsOverAtOnce: the buffer goes to the other members when the
// drain begins, not when it ends (its traces would come due here
// meanwhile), and what reaches it during the drain follows within a sweep.
func TestDrainHandsOverAtOnce(t *testing.T) {
	n, buf, gws, clk := drainNode(t, 10*time.Second)
	var w routertest.Workload
	buf.hold(encode(t, w.Batch(10, 2)))
	done := make(chan struct{})
	go func() {
		n.Drain(context.Background())
		close(done)
	}()
	require.Eventually(t, func() bool { return gws.Count() == 20 }, 10*time.Second, 5*time.Millisecond,
		"handed over before the clock moved")

	buf.hold(encode(t, w.Batch(10, 2))) // taken in while the drain began
	// One sweep at a time, each given a second of real time to hand over:
	// a clock moved every few milliseconds would pass the drain's end
	// (10 s, 20 sweeps) before a loaded machine had run one sweep.
	for range 15 {
		clk.Advance(drainSweep)
		deadline := time.Now().Add(time.Second)
		for gws.Count() < 40 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if gws.Count() == 40 {
			break
		}
	}
	require.Equal(t, 40, gws.Count(), "handed over within a sweep")
	select {
	case <-done:
		t.Fatal("the drain ended early")
	default:
	}
	advanceUntil(t, clk, done)
}

// TestDrainRelays: a draining gateway passes on what other gateways,
// which have not yet seen it leave, forward or hand over to it, marked
// relayed; what is already relayed it keeps.
func TestDrainRelays(t *testing.T) {
	n, buf, gws, _ := drainNode(t, time.Hour)
	n.BeginDrain()
	var w routertest.Workload
	body := encode(t, w.Batch(40, 3))
	d := Decisions{Kept: []Kept{{ID: [16]byte{1}, Threshold: 7}}, Dropped: []uint64{9}}

	fwd := append(AppendControl(nil, &Control{Forwarded: true, Decisions: d}), body...)
	got, err := n.Ingest(context.Background(), fwd, nil)
	require.NoError(t, err)
	assert.Equal(t, 120, got)
	require.Eventually(t, func() bool { return gws.Count() == 120 }, 10*time.Second, 5*time.Millisecond,
		"forwarded spans passed on to their owner")
	buf.mu.Lock()
	assert.Empty(t, buf.ingested, "nothing forwarded is kept while draining")
	assert.Empty(t, buf.decisions, "handed-over decisions are passed on")
	buf.mu.Unlock()

	again := encode(t, w.Batch(5, 2))
	relayed := append(AppendControl(nil, &Control{Forwarded: true, Relayed: true, Decisions: d}), again...)
	got, err = n.Ingest(context.Background(), relayed, nil)
	require.NoError(t, err)
	assert.Equal(t, 10, got)
	buf.mu.Lock()
	defer buf.mu.Unlock()
	assert.Equal(t, [][]byte{again}, buf.ingested, "relayed spans stay")
	assert.Equal(t, []Decisions{d}, buf.decisions, "relayed decisions stay")
}

// TestFirstMemberSetIsNoRingChange: the settle time after the first member
// set hands nothing over, so that forwarded spans stay where they land.
func TestFirstMemberSetIsNoRingChange(t *testing.T) {
	n, buf, _, clk := drainNode(t, 0)
	var w routertest.Workload
	buf.hold(encode(t, w.Batch(10, 2))) // forwarded here, owned by the other
	// The settle timer would be set by the node's goroutine: the clock
	// moves in steps a few milliseconds apart, past settle each time.
	steps := 0
	require.Eventually(t, func() bool {
		clk.Advance(n.cfg.Handover.Settle)
		steps++
		return steps >= 10
	}, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, buf.takes.Load(), "no handover ran")
}
