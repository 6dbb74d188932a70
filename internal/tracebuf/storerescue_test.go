package tracebuf

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/wire"
)

// lastSpanError is req (one ResourceSpans, one ScopeSpans) with its last
// span's status ERROR.
func lastSpanError(t *testing.T, req []byte) []byte {
	t.Helper()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(req)
	require.NoError(t, err)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.At(spans.Len() - 1).Status().SetCode(ptrace.StatusCodeError)
	var m ptrace.ProtoMarshaler
	out, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return out
}

// newStoreBuffer is storeBuffer on a fresh store, with a fake clock and a
// channel sink.
func newStoreBuffer(t *testing.T) (*Buffer, *store.Store, *chanSink, *clocktest.Fake) {
	t.Helper()
	st := openTestStore(t, t.TempDir())
	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	return storeBuffer(t, st, out.emit, clk), st, out, clk
}

// spanStates returns the tracestate of every span of td by span number.
func spanStates(td ptrace.Traces) map[uint64]string {
	out := map[uint64]string{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				out[binary.BigEndian.Uint64(id[:])] = sp.TraceState().AsRaw()
			}
		}
	}
	return out
}

// dropTraces ingests spans 1 (the root) and 2 of traces ns and lets quiet
// drop them.
func dropTraces(t *testing.T, b *Buffer, clk *clocktest.Fake, ns ...uint64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.Ingest(ctx, encode(t, ns, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, ns, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second)
	require.NoError(t, b.Sync(ctx)) // dropped
}

// TestLateErrorRescueTakesTheLateSpansBeforeIt: a dropped trace's late
// spans come in one request, the ERROR one last. The spans before it change
// nothing alone and are let go by the shard, but the rescue sends them on
// too: it reads the trace once the store has written that request.
func TestLateErrorRescueTakesTheLateSpansBeforeIt(t *testing.T) {
	ctx := context.Background()
	b, _, out, clk := newStoreBuffer(t)
	dropTraces(t, b, clk, 5)
	require.NoError(t, b.Ingest(ctx, lastSpanError(t, encodePairs(t, []uint64{5}, []uint64{3, 4, 5}))))
	require.NoError(t, b.Sync(ctx))

	states := spanStates(out.next(t))
	assert.Equal(t, map[uint64]string{1: "tailsift=rescue", 2: "tailsift=rescue", 3: "tailsift=rescue", 4: "tailsift=rescue", 5: "tailsift=rescue"},
		states, "the whole trace, every late span included, marked as a rescue")

	// Later spans follow the rescue, with its mark.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 6, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, map[uint64]string{6: "tailsift=rescue"}, spanStates(out.next(t)))
}

// TestLateErrorRescuedThroughShutdown: a late ERROR span taken in just
// before the shutdown still keeps its trace: the rescuer deals with what is
// queued for it before the store is closed.
func TestLateErrorRescuedThroughShutdown(t *testing.T) {
	ctx := context.Background()
	b, _, out, clk := newStoreBuffer(t)
	dropTraces(t, b, clk, 7, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29) // the others are rescued as well
	for n := uint64(20); n < 30; n++ {
		require.NoError(t, b.Ingest(ctx, encode(t, []uint64{n}, 3, ptrace.StatusCodeError)))
	}
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.ShutdownWithStorage(ctx))

	got := map[[16]byte]int{}
	for len(out.ch) > 0 {
		for id, n := range spanCounts(<-out.ch) {
			got[id] += n
		}
	}
	want := map[[16]byte]int{tid(7): 3}
	for n := uint64(20); n < 30; n++ {
		want[tid(n)] = 3
	}
	assert.Equal(t, want, got, "every trace whole, late ERROR span included")
}

// TestRestartKeepsSupplementMarks: after a restart, the late spans of a
// trace rescued by a late span, or kept through the API, carry the
// tracestate its earlier spans did (tailsift=rescue, tailsift=retro), not a
// threshold that would count them again; a trace the sampler kept carries
// its threshold.
func TestRestartKeepsSupplementMarks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	st.AppendSpans([][16]byte{tid(1), tid(2), tid(3)}, encode(t, []uint64{1, 2, 3}, 1, ptrace.StatusCodeUnset))
	for n, d := range map[uint64]store.Decision{
		1: {Keep: true, Policy: "errors", Reason: ReasonLateSpan},
		2: {Keep: true, Policy: RetroactiveRule, Reason: RetroactiveRule},
		3: {Keep: true, Threshold: 1 << 55, Policy: "baseline", Reason: "quiet"},
	} {
		st.AppendDecision(tid(n), store.Decision{Keep: false, Reason: "quiet"})
		st.AppendDecision(tid(n), d)
	}
	st.AppendDelivered(st.BeginDelivery(), [][16]byte{tid(1), tid(2), tid(3)})
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir)

	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(100, 0))
	b := storeBuffer(t, openTestStore(t, image), out.emit, clk)
	n, err := b.Replay(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "every kept trace was delivered")
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2, 3}, 4, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	got := map[[16]byte]string{}
	for _, rs := range out.next(t).ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				got[sp.TraceID()] = sp.TraceState().AsRaw()
			}
		}
	}
	assert.Equal(t, map[[16]byte]string{tid(1): "tailsift=rescue", tid(2): "tailsift=retro", tid(3): "ot=th:8"}, got)
}

// TestDroppedExtentsChanges: a shard lets go a late span of a dropped trace
// it remembers when the span brings no first error and does not lengthen
// the trace; it offers every other one to the rescuer, and a trace it
// forgot (droppedRecent later drops) is offered whatever its span.
func TestDroppedExtentsChanges(t *testing.T) {
	var d droppedExtents
	d.remember(1, extent{start: 100, end: 200})
	steps := []struct {
		name string
		hash uint64
		span wire.Span
		want bool
	}{
		{"inside, no error", 1, wire.Span{Start: 120, End: 180}, false},
		{"first error", 1, wire.Span{Start: 120, End: 180, Status: statusError}, true},
		{"second error", 1, wire.Span{Start: 130, End: 150, Status: statusError}, false},
		{"ends later", 1, wire.Span{Start: 150, End: 250}, true},
		{"inside the widened extent", 1, wire.Span{Start: 190, End: 240}, false},
		{"starts earlier", 1, wire.Span{Start: 90, End: 150}, true},
		{"not remembered", 2, wire.Span{Start: 120, End: 180}, true},
	}
	for _, st := range steps {
		assert.Equal(t, st.want, d.changes(st.hash, &st.span), st.name)
	}
	for h := range uint64(droppedRecent - 1) {
		d.remember(1000+h, extent{start: 100, end: 200})
	}
	assert.False(t, d.changes(1, &wire.Span{Start: 120, End: 180}), "remembered while the ring holds it")
	d.remember(999, extent{start: 100, end: 200})
	assert.True(t, d.changes(1, &wire.Span{Start: 120, End: 180}), "forgotten once droppedRecent later traces were dropped")
	assert.Len(t, d.byHash, droppedRecent)
}
