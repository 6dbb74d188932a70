package tracebuf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/sampling"
)

// refusingSink records what it accepts, and refuses calls while fail says so.
type refusingSink struct {
	mu    sync.Mutex
	spans map[[16]byte]int
	calls atomic.Int32
	// fail returns the error for the n-th call (1-based), or nil.
	fail func(ctx context.Context, n int32) error
}

func (a *refusingSink) emit(ctx context.Context, td ptrace.Traces) error {
	n := a.calls.Add(1)
	if a.fail != nil {
		if err := a.fail(ctx, n); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.spans == nil {
		a.spans = map[[16]byte]int{}
	}
	for id, c := range spanCounts(td) {
		a.spans[id] += c
	}
	return nil
}

func (a *refusingSink) count(id [16]byte) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.spans[id]
}

// droppedInStore is a buffer on a new store, whose next consumer is a
// refusingSink, with the traces ns dropped.
func droppedInStore(t *testing.T, ns ...uint64) (*store.Store, *refusingSink, *clocktest.Fake, *Buffer) {
	t.Helper()
	st := openTestStore(t, t.TempDir())
	sink := &refusingSink{}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, sink.emit, clk)
	dropTraces(t, b, clk, ns...)
	return st, sink, clk, b
}

// TestRescueRetriesRetryableRefusal: a dropped trace's late ERROR span
// makes the rescuer keep it from the store, and the next consumer refuses
// the first call retryably (not consumererror.Permanent), as a full
// exporter queue does for a moment. The rescuer used to send once: the
// kept error trace was lost, and a later span of it, forwarded as a late
// span of a kept trace, marked it delivered in the store. It retries now,
// as the shards do.
func TestRescueRetriesRetryableRefusal(t *testing.T) {
	ctx := context.Background()
	st, sink, clk, b := droppedInStore(t, 5)
	require.Zero(t, sink.calls.Load())

	// From now on the first call is refused, retryably.
	sink.fail = func(_ context.Context, n int32) error {
		if n == 1 {
			return errors.New("sending queue is full") // retryable
		}
		return nil
	}
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	require.Eventually(t, func() bool { return sink.calls.Load() >= 1 }, 5*time.Second, 10*time.Millisecond, "the rescuer calls the next consumer")
	// Give a retry every chance (the shards retry within 5 ms, 10, 20, ...).
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && sink.count(tid(5)) == 0 {
		time.Sleep(20 * time.Millisecond)
		clk.Advance(100 * time.Millisecond)
		_ = b.Sync(ctx)
	}
	require.NoError(t, st.Sync(ctx))
	tr, err := st.Trace(tid(5))
	require.NoError(t, err)
	t.Logf("calls=%d delivered spans of the rescued trace=%d; store: keep=%v delivered=%v",
		sink.calls.Load(), sink.count(tid(5)), tr.Decision.Keep, tr.Delivered)

	// A later span of the trace is forwarded as a late span of a kept
	// trace, while the trace itself never went out.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 4, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	t.Logf("after a later span: delivered spans of the trace=%d", sink.count(tid(5)))
	require.NoError(t, st.Sync(ctx))
	tr, err = st.Trace(tid(5))
	require.NoError(t, err)
	t.Logf("store after the late span was forwarded: keep=%v delivered=%v (a restart would not resend the trace)", tr.Decision.Keep, tr.Delivered)
	assert.GreaterOrEqual(t, sink.count(tid(5)), 3, "the rescued error trace (3 spans) is delivered after a retryable refusal")
}

// TestShutdownCutsRescueShort: the next consumer blocks until its context
// ends (an exporter queue with block_on_overflow). A rescue in flight used
// to call it with context.Background while holding the buffer's in-flight
// count, so that Shutdown waited for it with no deadline. The beginning of
// the shutdown ends the rescue's wait now, and the rescued trace is sent
// again in closeStore, within the shutdown's time.
func TestShutdownCutsRescueShort(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	release := make(chan struct{})
	var blocked atomic.Bool
	entered := make(chan struct{}, 1)
	sink := &refusingSink{}
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.ShutdownTimeout = 300 * time.Millisecond
	b, err := New(cfg, sink.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	b.Start()
	dropTraces(t, b, clk, 5)

	sink.fail = func(ctx context.Context, _ int32) error {
		if !blocked.Load() {
			return nil
		}
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-release:
			return errors.New("released by the test")
		}
	}
	blocked.Store(true)
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeError)))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the rescuer never called the next consumer")
	}

	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- b.ShutdownWithStorage(sctx) }()
	select {
	case err := <-done:
		t.Logf("ShutdownWithStorage returned after %v: %v", time.Since(start), err)
		assert.Less(t, time.Since(start), 2*time.Second, "within output.shutdown_timeout (300 ms) and the 1 s deadline")
	case <-time.After(4 * time.Second):
		close(release) // let the test end
		err := <-done
		t.Errorf("ShutdownWithStorage still blocked 4s after it began (shutdown_timeout 300ms, ctx deadline 1s); returned %v after release, %v in all",
			err, time.Since(start))
	}
}

// TestKeepStoredRetries: POST /traces/{id}/keep while the next consumer
// refuses retryably. KeepStored used to record the keep, send once and
// fail; the caller's retry was then refused (ErrNotDropped), and the trace
// never went out while the process ran. It retries as the shards do now,
// and a keep whose sending failed may be asked again; a delivered one not.
func TestKeepStoredRetries(t *testing.T) {
	ctx := context.Background()
	st, sink, clk, b := droppedInStore(t, 9)
	require.NoError(t, st.Sync(ctx))
	sink.fail = func(_ context.Context, n int32) error {
		if n == 1 {
			return errors.New("exporter queue full") // retryable
		}
		return nil
	}
	n, err := b.KeepStored(ctx, tid(9))
	require.NoError(t, err, "retried after the refusal")
	require.Equal(t, 2, n)
	assert.Equal(t, 2, sink.count(tid(9)))
	assert.Equal(t, int32(2), sink.calls.Load())
	require.NoError(t, st.Sync(ctx))
	_, err = b.KeepStored(ctx, tid(9))
	require.ErrorIs(t, err, ErrNotDropped, "a delivered keep is not sent again")

	// A send that fails (a permanent refusal) may be asked again.
	dropTraces(t, b, clk, 11)
	require.NoError(t, st.Sync(ctx))
	sink.fail = func(_ context.Context, n int32) error {
		if n == 3 {
			return consumererror.NewPermanent(errors.New("refused"))
		}
		return nil
	}
	_, err = b.KeepStored(ctx, tid(11))
	require.Error(t, err)
	require.NoError(t, st.Sync(ctx))
	_, err = b.KeepStored(ctx, tid(11))
	require.NoError(t, err, "asked again")
	assert.Equal(t, 2, sink.count(tid(11)))
}

// TestDeliveredAfterMemoryDropNotResent: a trace dropped early for memory
// gets an ERROR span later, which starts it afresh; it is kept at max_wait
// and delivered in the same loop. The shard used to hand its decisions to
// the store after the loop's output, and the index clears a delivery noted
// before a keep that follows a drop: the store said "kept, not delivered",
// and a restart sent the trace again. The decisions go first now.
func TestDeliveredAfterMemoryDropNotResent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	sink := &refusingSink{}
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Buffer.MaxBytes = 16 << 10
	b, err := New(cfg, sink.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	b.Start()
	t.Cleanup(func() {
		_ = b.Shutdown(context.Background())
		b.CloseStore()
	})
	// Trace 1 first, then enough others for memory to decide the oldest.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 2, ptrace.StatusCodeUnset)))
	for n := uint64(100); n < 400; n++ {
		require.NoError(t, b.Ingest(ctx, encode(t, []uint64{n}, 2, ptrace.StatusCodeUnset)))
	}
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, st.Sync(ctx))
	tr, err := st.Trace(tid(1))
	require.NoError(t, err)
	require.True(t, tr.Decided)
	require.Equal(t, ReasonMemory, tr.Decision.Reason, "trace 1 was dropped for memory")
	clk.Advance(11 * time.Second) // the others go at max_wait
	require.NoError(t, b.Sync(ctx))

	// The ERROR span of trace 1: a trace of its own, kept at max_wait.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 3, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(11 * time.Second)
	require.NoError(t, b.Sync(ctx))
	require.Equal(t, 1, sink.count(tid(1)), "the kept ERROR span was delivered")
	require.NoError(t, st.Sync(ctx))
	tr, err = st.Trace(tid(1))
	require.NoError(t, err)
	t.Logf("store: decided=%v keep=%v reason=%s delivered=%v", tr.Decided, tr.Decision.Keep, tr.Decision.Reason, tr.Delivered)

	// Restart on the image: the delivered trace is sent again.
	image := crashCopy(t, dir)
	sink2 := &refusingSink{}
	clk2 := clocktest.NewFake(time.Unix(100, 0))
	b2 := storeBuffer(t, openTestStore(t, image), sink2.emit, clk2)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second)
	require.NoError(t, b2.Sync(ctx))
	t.Logf("replayed %d spans; trace 1 spans sent again after restart: %d", n, sink2.count(tid(1)))
	assert.True(t, tr.Delivered, "the store records the delivery of the kept trace")
	assert.Zero(t, sink2.count(tid(1)), "a delivered trace is not sent again")
}

// TestReplayKeptUndelivered: the store holds one kept trace not delivered
// among 10, and among 20 000 (more than the kept cache holds), kept and
// delivered decisions. AttachStore used to set them all in the kept cache
// in the store's order before Replay: with 20 000 the undelivered trace's
// entry was evicted, so its replayed spans started a trace of their own,
// decided afresh and dropped. The undelivered ones are set last now.
func TestReplayKeptUndelivered(t *testing.T) {
	for _, others := range []uint64{10, 20000} {
		t.Run(fmt.Sprint(others), func(t *testing.T) { replayKeptUndelivered(t, others) })
	}
}

func replayKeptUndelivered(t *testing.T, others uint64) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	const victim = 7
	st.AppendSpans([][16]byte{tid(victim)}, encode(t, []uint64{victim}, 1, ptrace.StatusCodeUnset))
	st.AppendDecision(tid(victim), storeDecision(true, "baseline", "quiet"))
	ids := make([][16]byte, 0, others)
	decs := make([]storeDec, 0, others)
	for n := uint64(1000); n < 1000+others; n++ {
		ids = append(ids, tid(n))
		decs = append(decs, storeDecision(true, "errors", "quiet"))
	}
	st.AppendDecisions(ids, decs)
	st.AppendDelivered(st.BeginDelivery(), ids)
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir)

	sink := &refusingSink{}
	clk := clocktest.NewFake(time.Unix(100, 0))
	b := storeBuffer(t, openTestStore(t, image), sink.emit, clk)
	n, err := b.Replay(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, b.Sync(ctx))
	clk.Advance(20 * time.Second) // quiet, max_wait, output batch
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	t.Logf("spans of the kept, undelivered trace sent after the restart: %d", sink.count(tid(victim)))
	assert.Equal(t, 1, sink.count(tid(victim)), "a kept trace whose delivery was not recorded is sent again")
}

type storeDec = store.Decision

func storeDecision(keep bool, policy, reason string) store.Decision {
	return store.Decision{Keep: keep, Policy: policy, Reason: reason}
}

// spanCountObs counts accepted, decided and failed spans.
type spanCountObs struct {
	NopObserver
	received, decided, kept, failed atomic.Int64
}

func (o *spanCountObs) Received(n int) { o.received.Add(int64(n)) }
func (o *spanCountObs) Decided(_ string, keep bool, spans int, _ string, _, _ time.Duration) {
	o.decided.Add(int64(spans))
	if keep {
		o.kept.Add(int64(spans))
	}
}
func (o *spanCountObs) ExportFailed(n int) { o.failed.Add(int64(n)) }

// TestShutdownRacesIngest: Ingest calls on several goroutines while
// Shutdown runs: every span an Ingest call accepted (nil error) is decided,
// and every kept span is delivered or counted as failed.
func TestShutdownRacesIngest(t *testing.T) {
	for round := range 20 {
		obs := &spanCountObs{}
		sink := &refusingSink{}
		cfg := testBufferConfig()
		cfg.Shards = 3
		cfg.Completion.MaxSpans = 100
		cfg.Policies = append(cfg.Policies, sampling.NewPolicyConfig("all", "always_sample", &sampling.AlwaysSampleConfig{}))
		b, err := New(cfg, sink.emit, Settings{Observer: obs})
		require.NoError(t, err)
		b.Start()
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := uint64(0); ; i++ {
					n := uint64(g)<<32 | i
					err := b.Ingest(context.Background(), encode(t, []uint64{n, n + 1<<20}, 2, ptrace.StatusCodeUnset))
					if err == nil {
						accepted.Add(2)
						continue
					}
					if errors.Is(err, ErrShutdown) {
						return
					}
					t.Errorf("ingest: %v", err)
					return
				}
			})
		}
		time.Sleep(time.Duration(5+round) * time.Millisecond)
		require.NoError(t, b.Shutdown(context.Background()))
		wg.Wait()
		delivered := int64(0)
		sink.mu.Lock()
		for _, c := range sink.spans {
			delivered += int64(c)
		}
		sink.mu.Unlock()
		if accepted.Load() != obs.received.Load() || obs.received.Load() != obs.decided.Load() || obs.kept.Load() != delivered+obs.failed.Load() {
			t.Fatalf("round %d: accepted %d received %d decided %d kept %d delivered %d failed %d", round,
				accepted.Load(), obs.received.Load(), obs.decided.Load(), obs.kept.Load(), delivered, obs.failed.Load())
		}
	}
}

// TestShutdownWithStorageKeepsTheTimeout: the backend is down (a kept
// trace is retried until the deadline) and a late ERROR span of a dropped
// trace is queued behind it. Buffer.Shutdown used output.shutdown_timeout,
// then closeStore started a fresh one for the rescue: with no deadline on
// the shutdown context (the collector gives none), the component's
// Shutdown took twice the documented bound. One deadline covers both now.
func TestShutdownWithStorageKeepsTheTimeout(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	const timeout = time.Second
	var down atomic.Bool
	sink := &refusingSink{fail: func(ctx context.Context, _ int32) error {
		if !down.Load() {
			return nil
		}
		<-ctx.Done() // a backend that times out
		return errors.New("backend unavailable")
	}}
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.ShutdownTimeout = timeout
	cfg.Output.BatchTimeout = 0
	b, err := New(cfg, sink.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.AttachStore(st)
	b.Start()
	dropTraces(t, b, clk, 5)
	down.Store(true)
	// A kept trace: its shard now retries it, holding its lock.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // the shard decides it (quiet) and blocks in the output
	require.Eventually(t, func() bool { return sink.calls.Load() >= 1 }, 5*time.Second, 5*time.Millisecond)
	// The late ERROR span of the dropped trace is queued behind it.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{5}, 3, ptrace.StatusCodeError)))

	start := time.Now()
	err = b.ShutdownWithStorage(ctx)
	took := time.Since(start)
	t.Logf("ShutdownWithStorage took %v (output.shutdown_timeout %v): %v; next consumer calls %d", took, timeout, err, sink.calls.Load())
	assert.Less(t, took, timeout+timeout/2, "shutdown is bounded by output.shutdown_timeout")
}
