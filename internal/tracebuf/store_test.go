package tracebuf

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
)

// chanSink hands each request the buffer emits to a channel, so that a test
// waits for an event, not for time.
type chanSink struct{ ch chan ptrace.Traces }

func newChanSink() *chanSink { return &chanSink{ch: make(chan ptrace.Traces, 64)} }

func (c *chanSink) emit(_ context.Context, td ptrace.Traces) error {
	c.ch <- td
	return nil
}

// next waits for the next emitted request.
func (c *chanSink) next(t *testing.T) ptrace.Traces {
	t.Helper()
	select {
	case td := <-c.ch:
		return td
	case <-time.After(10 * time.Second):
		t.Fatal("nothing emitted within 10s")
		return ptrace.Traces{}
	}
}

func openTestStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 30})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// crashCopy copies a store directory as kill -9 leaves it.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, de.Name()), data, 0o640))
	}
	return dst
}

func storeBuffer(t *testing.T, st *store.Store, emit Emit, clk *clocktest.Fake) *Buffer {
	t.Helper()
	return storeBufferWith(t, st, emit, clk, func(*Config) {})
}

// storeBufferWith is storeBuffer with its config changed by edit.
func storeBufferWith(t *testing.T, st *store.Store, emit Emit, clk *clocktest.Fake, edit func(*Config)) *Buffer {
	t.Helper()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	edit(&cfg)
	b, err := New(cfg, emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	b.Start()
	t.Cleanup(func() {
		require.NoError(t, b.Shutdown(context.Background()))
		b.CloseStore()
	})
	return b
}

func spanCounts(td ptrace.Traces) map[[16]byte]int {
	n := map[[16]byte]int{}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			for k := range sss.At(j).Spans().Len() {
				n[sss.At(j).Spans().At(k).TraceID()]++
			}
		}
	}
	return n
}

// TestRestartResumesUndecidedTraces: the buffer is killed with two traces
// undecided; a buffer on the crash image takes them in again and keeps the
// error trace whole.
func TestRestartResumesUndecidedTraces(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	first := newChanSink()
	b := storeBuffer(t, st, first.emit, clocktest.NewFake(time.Unix(0, 0)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2}, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 here: nothing was decided

	clk := clocktest.NewFake(time.Unix(100, 0))
	out := newChanSink()
	b2 := storeBuffer(t, openTestStore(t, image), out.emit, clk)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	require.NoError(t, b2.Sync(ctx))
	clk.Advance(2 * time.Second) // quiet
	require.NoError(t, b2.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b2.Sync(ctx))
	got := spanCounts(out.next(t))
	assert.Equal(t, map[[16]byte]int{tid(1): 3}, got, "the error trace, whole; the other is dropped")
}

// TestRestartResendsKeptUndelivered: a trace kept but not delivered before
// the kill is sent again, with its threshold; a delivered one is not, and
// the late spans of a dropped one stay dropped.
func TestRestartResendsKeptUndelivered(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	st.AppendSpans([][16]byte{tid(1), tid(2), tid(3)}, encode(t, []uint64{1, 2, 3}, 1, ptrace.StatusCodeError))
	st.AppendDecision(tid(1), store.Decision{Keep: true, Policy: "errors", Reason: "quiet"})
	st.AppendDecision(tid(2), store.Decision{Keep: true, Policy: "errors", Reason: "quiet"})
	st.AppendDelivered(st.BeginDelivery(), [][16]byte{tid(2)})
	st.AppendDecision(tid(3), store.Decision{Keep: false, Reason: "quiet"})
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir)

	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(100, 0))
	b := storeBuffer(t, openTestStore(t, image), out.emit, clk)
	n, err := b.Replay(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	td := out.next(t)
	assert.Equal(t, map[[16]byte]int{tid(1): 1}, spanCounts(td))
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, "ot=th:0", sp.TraceState().AsRaw())

	// A late span of the dropped trace stays dropped (no ERROR, no longer).
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{3}, 7, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	select {
	case td := <-out.ch:
		t.Fatalf("emitted %v", spanCounts(td))
	default:
	}
}

// TestLateErrorKeepsDroppedTraceFromStore: a trace dropped at quiet gets a
// late ERROR span: the rescuer reads it from the store and sends it whole.
func TestLateErrorKeepsDroppedTraceFromStore(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, out.emit, clk)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second)
	require.NoError(t, b.Sync(ctx)) // dropped
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))

	td := out.next(t)
	assert.Equal(t, map[[16]byte]int{tid(5): 3}, spanCounts(td), "the whole trace, late span included")
	require.NoError(t, st.Sync(ctx))
	tr, err := st.Trace(tid(5))
	require.NoError(t, err)
	assert.True(t, tr.Decision.Keep)
	assert.Equal(t, "late_span", tr.Decision.Reason)
}

// TestKeepStored: a dropped trace is sent on through the API, marked.
func TestKeepStored(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	out := newChanSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, out.emit, clk)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{9}, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{9}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, st.Sync(ctx))

	_, err := b.KeepStored(ctx, tid(9))
	require.ErrorIs(t, err, ErrNotDropped, "undecided yet")
	clk.Advance(2 * time.Second)
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, st.Sync(ctx))

	n, err := b.KeepStored(ctx, tid(9))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	td := out.next(t)
	require.Equal(t, 2, td.SpanCount())
	for i := range td.ResourceSpans().Len() {
		sp := td.ResourceSpans().At(i).ScopeSpans().At(0).Spans().At(0)
		assert.Equal(t, "tailsift=retro", sp.TraceState().AsRaw(), "a supplement: counts 0")
		rule, ok := sp.Attributes().Get("sampling.rule")
		assert.Equal(t, sp.ParentSpanID().IsEmpty(), ok, "only the root is marked")
		if ok {
			assert.Equal(t, RetroactiveRule, rule.Str())
		}
	}
	require.NoError(t, st.Sync(ctx))
	_, err = b.KeepStored(ctx, tid(9))
	require.ErrorIs(t, err, ErrNotDropped, "kept now")
}
