package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// foreignBuffer has an endless supply of foreign traces, chunk by chunk.
type foreignBuffer struct {
	fakeBuffer
	chunk []byte
	takes atomic.Int32
	empty atomic.Bool // no more foreign traces
}

func (b *foreignBuffer) TakeForeign(_ context.Context, _ int, _ func(uint64) bool, maxBytes int) (Foreign, bool, error) {
	if b.empty.Load() || maxBytes <= 0 {
		return Foreign{}, false, nil
	}
	b.takes.Add(1)
	return Foreign{Traces: append([]byte(nil), b.chunk...), NTraces: 10, Spans: 20}, true, nil
}

type countingObserver struct {
	NopObserver
	handed, local atomic.Int64
	bytes         atomic.Int64
}

func (o *countingObserver) HandedOver(_ context.Context, traces, _, bytes int) {
	o.handed.Add(int64(traces))
	o.bytes.Add(int64(bytes))
}
func (o *countingObserver) DecidedLocally(_ context.Context, traces int) { o.local.Add(int64(traces)) }

func handoverNode(t *testing.T, h HandoverConfig) (*Node, *foreignBuffer, *countingObserver, *clocktest.Fake) {
	t.Helper()
	_, addrs := routertest.StartGateways(t, "127.0.0.1")
	var w routertest.Workload
	buf := &foreignBuffer{chunk: encode(t, w.Batch(10, 2))}
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addrs[0]}, 0
	cfg.Handover = h
	obs := &countingObserver{}
	n, clk := runNode(t, cfg, buf, obs)
	// Cleanups run last first: nothing more to hand over at the end.
	t.Cleanup(func() { buf.empty.Store(true) })
	n.BeginDrain() // owns nothing: everything is foreign
	return n, buf, obs, clk
}

func TestHandOverStopsAtMaxBytes(t *testing.T) {
	n, buf, obs, _ := handoverNode(t, HandoverConfig{
		Enabled: true, Settle: time.Second, BytesPerSecond: 1 << 40, MaxBytes: 1 << 20, Timeout: time.Minute,
	})
	n.HandOver(context.Background())
	per := int64(len(buf.chunk))
	assert.Equal(t, (1<<20+per-1)/per, int64(buf.takes.Load()), "chunks taken until max_bytes is used up")
	assert.Equal(t, int64(buf.takes.Load())*per, obs.bytes.Load())
	assert.Zero(t, obs.local.Load())
}

func TestHandOverIsPaced(t *testing.T) {
	n, buf, obs, clk := handoverNode(t, HandoverConfig{
		Enabled: true, Settle: time.Second, BytesPerSecond: 64 << 10, MaxBytes: 1 << 30, Timeout: time.Minute,
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // a failed test ends the handover before the node shuts down
	done := make(chan struct{})
	go func() {
		n.HandOver(ctx)
		close(done)
	}()
	// Each chunk waits its bytes at 64 KiB/s on the fake clock before it is
	// sent. The clock moves in quarter chunks; a step may come before the
	// pacing timer is set (that step is then lost to it), so the clock can
	// only run ahead of the chunks, never behind: chunk k+1 is taken only
	// after k chunks' worth of time has passed.
	per := time.Duration(float64(len(buf.chunk)) / float64(64<<10) * float64(time.Second))
	require.Greater(t, per, time.Millisecond, "a chunk long enough to be paced")
	var advanced time.Duration
	for deadline := time.Now().Add(10 * time.Second); buf.takes.Load() < 5; {
		require.True(t, time.Now().Before(deadline), "5 chunks taken within 10 s: %d after %v of the clock", buf.takes.Load(), advanced)
		clk.Advance(per / 4)
		advanced += per / 4
		time.Sleep(time.Millisecond)
		assert.LessOrEqual(t, int64(buf.takes.Load()), 1+int64(advanced/per), "paced: no chunk before its time")
	}
	require.Eventually(t, func() bool { return obs.handed.Load() > 0 }, 10*time.Second, time.Millisecond)
	assert.LessOrEqual(t, int64(buf.takes.Load()), 1+int64(advanced/per), "paced: no chunk before its time")
	select {
	case <-done:
		t.Fatal("the handover ended while it had traces to move")
	default:
	}
	// Cut short (its timeout, or shutdown): the chunk being paced is given
	// back to the buffer, to be decided here.
	cancel()
	<-done
	assert.Equal(t, int64(10), obs.local.Load())
	buf.mu.Lock()
	defer buf.mu.Unlock()
	assert.Len(t, buf.ingested, 1, "what was not handed over is taken back")
}
