package tracebuf

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestLateSpanDuringRetroKeepSurvivesCrash: a retroactive keep (POST
// .../keep) of a dropped trace sets the trace kept for the shards before
// it hands the stored spans on, so that later spans follow it. A late
// span of the trace that comes while the keep's call is under way (the
// next consumer slow, or refusing and retried) goes out through its
// shard's output batch, and the shard's delivery record, begun after
// every stored span of the trace was recorded, covered the stored spans
// the keep had not handed on yet: a kill -9 then, and the restart read the
// trace as delivered and sent nothing of it again.
func TestLateSpanDuringRetroKeepSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	entered, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	emit := func(ctx context.Context, td ptrace.Traces) error {
		for _, s := range spanStates(td) {
			if strings.Contains(s, "tailsift=retro") && len(spanStates(td)) > 1 && held.CompareAndSwap(false, true) {
				close(entered) // the keep's call: held until the "kill"
				<-release
				break
			}
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
	dropTraces(t, b, clk, 5)
	require.NoError(t, st.Sync(ctx))

	kept := make(chan error, 1)
	go func() {
		_, err := b.KeepStored(ctx, tid(5))
		kept <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the keep did not hand the trace on")
	}
	// A late span of the trace, while the keep's call is under way.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, map[uint64]string{3: "tailsift=retro"}, spanStates(out.next(t)), "the late span follows the keep")
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 now, the keep's call not returned
	close(release)
	require.NoError(t, <-kept)

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(5))
	require.NoError(t, err)
	assert.False(t, tr.Delivered, "the keep's spans were not handed on")
	_, _, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d of 3", n)
	assert.Equal(t, 3, n, "the stored spans go again, the late span too")
}

// TestLateSpanAfterFailedRetroKeep: a retroactive keep whose sending
// failed (a permanent refusal) is recorded kept and not delivered, and may
// be asked again. A late span of the trace then followed the keep out
// through its shard, whose delivery record marked the whole trace
// delivered: the keep asked again was refused (ErrNotDropped), and the
// stored spans were never handed on, without any crash.
func TestLateSpanAfterFailedRetroKeep(t *testing.T) {
	ctx := context.Background()
	st, sink, clk, b := droppedInStore(t, 9)
	require.NoError(t, st.Sync(ctx))
	sink.fail = func(_ context.Context, n int32) error {
		if n == 1 {
			return consumererror.NewPermanent(errors.New("refused"))
		}
		return nil
	}
	_, err := b.KeepStored(ctx, tid(9))
	require.Error(t, err, "the keep's call refused")

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{9}, 3, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	require.Equal(t, 1, sink.count(tid(9)), "the late span follows the keep")
	require.NoError(t, st.Sync(ctx))

	_, err = b.KeepStored(ctx, tid(9))
	require.NoError(t, err, "the keep asked again")
	t.Logf("spans of the trace handed on: %d of 3 (the late span twice)", sink.count(tid(9)))
	assert.Equal(t, 4, sink.count(tid(9)), "the stored spans go, the late span again")
}

// TestLateSpanDuringRescueSurvivesCrash is
// TestLateSpanDuringRetroKeepSurvivesCrash for a rescue: a late ERROR span
// keeps a dropped trace from the store, and a later span of it follows the
// rescue out through its shard while the rescuer's call is under way.
func TestLateSpanDuringRescueSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	entered, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	emit := func(ctx context.Context, td ptrace.Traces) error {
		if states := spanStates(td); len(states) > 1 && states[1] == "tailsift=rescue" && held.CompareAndSwap(false, true) {
			close(entered) // the rescuer's call: held until the "kill"
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
	dropTraces(t, b, clk, 5)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeError)))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the rescue did not hand the trace on")
	}
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 4, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // output batch
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, map[uint64]string{4: "tailsift=rescue"}, spanStates(out.next(t)), "the late span follows the rescue")
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 now, the rescuer's call not returned
	close(release)

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(5))
	require.NoError(t, err)
	assert.False(t, tr.Delivered, "the rescue's spans were not handed on")
	_, _, b2 := rigOn(t, st2, 100)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d of 4", n)
	assert.Equal(t, 4, n, "the stored spans go again, the late spans too")
}
