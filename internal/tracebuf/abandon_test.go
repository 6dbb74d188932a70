package tracebuf

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestAbandonedCallKeepsItsRequest: a wire output call that ignores its
// context is given up on at Shutdown's deadline, and may still read its
// request, a slice of the shard's output batch; the traces decided in the
// final flush must not be written over it.
func TestAbandonedCallKeepsItsRequest(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.BatchTimeout = 0
	cfg.Output.ShutdownTimeout = 100 * time.Millisecond
	b, err := New(cfg, (&tdSink{}).emit, Settings{Clock: clk})
	require.NoError(t, err)
	entered, returned := make(chan []byte, 1), make(chan []byte, 1)
	release := make(chan struct{})
	b.SetEmitWire(func(_ context.Context, req []byte, _ int) error {
		entered <- bytes.Clone(req)
		<-release // ignores its context
		returned <- bytes.Clone(req)
		return nil
	})
	b.Start()
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait) // trace 1 is kept: the shard blocks in the call
	var req []byte
	select {
	case req = <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("trace 1 never reached the wire output")
	}
	for n := uint64(2); n <= 20; n++ {
		require.NoError(t, b.Ingest(ctx, encode(t, []uint64{n}, 1, ptrace.StatusCodeError)))
	}
	start := time.Now()
	require.Error(t, b.Shutdown(ctx), "kept spans were not handed on")
	assert.Less(t, time.Since(start), cfg.Output.ShutdownTimeout+time.Second)
	close(release)
	assert.Equal(t, req, <-returned, "the request changed under the call")
}

// TestCallerGoroutine: a shard's caller runs every call on one goroutine
// (the calls see one goroutine's stack: no goroutine per call), gives up on
// a call that outlives its context, and then runs the next call on a new
// goroutine; the one left to the blocked call ends once it returns
// (goleak, in TestMain, sees any left).
func TestCallerGoroutine(t *testing.T) {
	var c caller
	defer c.stop()
	ctx := context.Background()
	require.NoError(t, c.call(ctx, func() error { return nil }))
	calls := c.calls // one per goroutine
	for range 3 {
		require.NoError(t, c.call(ctx, func() error { return nil }))
		assert.Equal(t, calls, c.calls, "a goroutine for each call")
	}
	want := errors.New("refused")
	require.ErrorIs(t, c.call(ctx, func() error { return want }), want)

	cctx, cancel := context.WithCancel(ctx)
	release := make(chan struct{})
	entered := make(chan struct{})
	go func() { <-entered; cancel() }()
	err := c.call(cctx, func() error { close(entered); <-release; return nil })
	require.ErrorIs(t, err, ErrAbandoned)
	assert.Nil(t, c.calls, "the goroutine is left to the blocked call")
	require.NoError(t, c.call(ctx, func() error { return nil }), "the next call runs on a new goroutine")
	assert.NotEqual(t, calls, c.calls)
	close(release)
}
