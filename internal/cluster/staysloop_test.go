package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestHandOverKilledMemberTracesThatStayHere: gateways g (this one), a
// and b, b killed and already found down, and more of b's traces whose
// late spans end here (nextup.go) than a handover chunk holds. Those stay
// here; the handover must not take them out again and again, chunk after
// chunk, until handover.timeout, and then count them decided here for
// want of time.
func TestHandOverKilledMemberTracesThatStayHere(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(3000, 2)
	buf := newTraceBuffer(t, td)
	a, b := startGate(t, false), startGate(t, false)
	obs := &countingObserver{}
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, []string{self, a.addr, b.addr}, 0
	cfg.Handover.BytesPerSecond = 640 << 10 // 64 KiB chunks, each paced 100 ms on the fake clock
	cfg.Handover.Timeout = 3 * time.Second
	n, clk := runNode(t, cfg, buf, obs)
	t.Cleanup(func() { buf.empty() }) // the shutdown's handover, paced on the fake clock, has nothing to wait for
	b.srv.Stop()
	require.Error(t, n.router.SendNow(context.Background(), b.addr, n.relay))
	require.True(t, n.router.Down(b.addr))

	all := ring.New([]string{self, a.addr, b.addr})
	stay, stayBytes := 0, 0
	for id := range buf.held() {
		h := ring.Hash(id)
		if all.Members()[all.Owner(h)] == b.addr && lateSpansAt(all, self, a.addr, b.addr, false, h) == "here" {
			stay++
			buf.tmu.Lock()
			stayBytes += len(buf.traces[id])
			buf.tmu.Unlock()
		}
	}
	require.Greater(t, stayBytes, n.chunk(), "more traces that stay here than a chunk holds")

	start := time.Now()
	done := handOverAsync(n)
	for {
		select {
		case <-done:
		default:
			clk.Advance(100 * time.Millisecond)
			time.Sleep(time.Millisecond) // let the paced send go
			continue
		}
		break
	}
	took := time.Since(start)
	t.Logf("traces that stay here %d (%d bytes, chunks of %d); handover took %v; takes %d; counted decided here %d, handed over %d",
		stay, stayBytes, n.chunk(), took.Round(time.Millisecond), buf.takes.Load(), obs.local.Load(), obs.handed.Load())
	assert.Zero(t, obs.local.Load(), "nothing decided here for want of time")
	assert.Less(t, took, 2*time.Second, "well within handover.timeout")
	assertKilledWhole(t, td, self, all, a, b, buf)
}

// assertKilledWhole checks that every trace is whole where its spans end
// among self, a and b with b killed (a ring change): here for self's own
// and those lateSpansAt says, at a for the rest.
func assertKilledWhole(t *testing.T, td ptrace.Traces, self string, all *ring.Ring, a, b *gate, buf *traceBuffer) {
	t.Helper()
	wrong := 0
	for id, at := range where(td, buf, a, b) {
		h := ring.Hash(id)
		want := a.addr
		switch all.Members()[all.Owner(h)] {
		case self:
			want = "here"
		case b.addr:
			want = lateSpansAt(all, self, a.addr, b.addr, false, h)
		}
		if len(at) != 1 || at[want] != 2 {
			wrong++
		}
	}
	assert.Zero(t, wrong, "traces not whole where their spans end")
}
