package tracebuf

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestLateSpanOfDeliveredKeepSurvivesCrash: an error trace is kept and
// delivered, and the store records the delivery. A late span of it is
// accepted and written to the store, and is being handed to the next
// consumer (a slow exporter; it would wait as long in the output batch or
// in a retry while the next consumer refuses) when the process is killed. The store held the trace
// as kept and delivered: the restart sent nothing again, and the accepted,
// written late span of a kept error trace was lost. A span recorded after
// the delivery must make the trace undelivered again, so that the restart
// sends it (at least once: the spans delivered before go again too).
func TestLateSpanOfDeliveredKeepSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	emit := func(ctx context.Context, td ptrace.Traces) error {
		if calls.Add(1) == 2 { // the late span: held until the "kill"
			close(entered)
			<-release
		}
		return out.emit(ctx, td)
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, emit, clk)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // quiet: kept by the errors policy
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	require.Len(t, spanStates(out.next(t)), 2, "the kept trace goes out")
	require.NoError(t, st.Sync(ctx))
	tr, err := st.TraceInfo(tid(7))
	require.NoError(t, err)
	require.True(t, tr.Decided && tr.Decision.Keep && tr.Delivered, "kept and delivered")

	// A late span, accepted and written, on its way to the next consumer.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 3, ptrace.StatusCodeUnset)))
	clk.Advance(time.Second) // output batch
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the late span was not handed on")
	}
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 now
	close(release)

	st2 := openTestStore(t, image)
	tr, err = st2.TraceInfo(tid(7))
	require.NoError(t, err)
	assert.False(t, tr.Delivered, "a span recorded after the delivery is not delivered")
	out2, clk2, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d", n)
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second) // output batch
	require.NoError(t, b2.Sync(ctx))
	got := map[uint64]string{}
	for len(out2.ch) > 0 {
		for span, state := range spanStates(<-out2.ch) {
			got[span] = state
		}
	}
	assert.Contains(t, got, uint64(3), "the accepted late span of the kept error trace is sent after the restart")
	for span, state := range got {
		assert.Contains(t, state, "th:", "span %d leaves marked with the keep's threshold", span)
	}
}

// TestLateSpanDuringDeliverySurvivesCrash: the late span of a kept error
// trace is accepted and written while the trace's own delivery is still
// in the next consumer's call; the delivery record follows it.
func TestLateSpanDuringDeliverySurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	entered := []chan struct{}{make(chan struct{}), make(chan struct{})}
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var calls atomic.Int32
	emit := func(ctx context.Context, td ptrace.Traces) error {
		if n := calls.Add(1); n <= 2 {
			close(entered[n-1])
			<-release[n-1]
		}
		return out.emit(ctx, td)
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, emit, clk)
	t.Cleanup(func() {
		for _, c := range release {
			select {
			case <-c:
			default:
				close(c)
			}
		}
	})
	wait := func(c chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("the next consumer was not called")
		}
	}
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // quiet: kept, and handed on
	wait(entered[0])             // the trace is being handed on
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 3, ptrace.StatusCodeUnset)))
	require.NoError(t, st.Sync(ctx)) // the late span is written
	close(release[0])                // the trace is delivered, its delivery recorded
	// The late span is handed on once the shard took it and its output
	// batch is due: the clock moves until it is.
	require.Eventually(t, func() bool {
		select {
		case <-entered[1]:
			return true
		default:
			clk.Advance(100 * time.Millisecond)
			return false
		}
	}, 10*time.Second, 10*time.Millisecond, "the late span is handed on")
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 now
	close(release[1])

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(7))
	require.NoError(t, err)
	t.Logf("after the crash: keep=%v delivered=%v", tr.Decision.Keep, tr.Delivered)
	out2, clk2, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d", n)
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second)
	require.NoError(t, b2.Sync(ctx))
	got := map[uint64]string{}
	for len(out2.ch) > 0 {
		for span, state := range spanStates(<-out2.ch) {
			got[span] = state
		}
	}
	assert.Contains(t, got, uint64(3), "the accepted late span of the kept error trace is sent after the restart")
}
