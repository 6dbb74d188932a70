package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// safeLearn is a buffer that keeps error traces and those with an OK span
// (quiet 1s, learning from 100ms), whose route "svc" has learned a quiet of
// 100ms, with what it decided and what it sent on.
type safeLearn struct {
	t       *testing.T
	b       *Buffer
	advance func(time.Duration) // in 10ms steps
	obs     *simObserver
	out     *collector
}

// safeLearnBuffer starts a safeLearn, with rescue.window when rescue is
// set, and teaches its route "svc" a quiet of 100ms: 64 traces whose two
// spans arrive together, then past the tracking horizon.
func safeLearnBuffer(t *testing.T, rescue bool) *safeLearn {
	t.Helper()
	ctx := context.Background()
	cfg := learnConfig(true)
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		sampling.NewPolicyConfig("ok", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"OK"}}),
	}
	if rescue {
		cfg.Rescue = RescueConfig{Window: 5 * time.Second, MaxBytes: 16 << 20}
	}
	obs := &simObserver{kept: map[[16]byte]int{}, routes: map[string]RouteCompletion{}}
	out := &collector{spans: map[[16]byte]int{}}
	b, clk := startBuffer(t, cfg, out.emit, obs)
	h := &safeLearn{t: t, b: b, obs: obs, out: out, advance: func(d time.Duration) {
		for step := 10 * time.Millisecond; d > 0; d -= step {
			clk.Advance(step)
			require.NoError(t, b.Sync(ctx))
		}
	}}
	for n := uint64(1); n <= 64; n++ {
		require.NoError(t, b.Ingest(ctx, encodeSpans(t,
			spanSpec{trace: n, span: 1, service: "svc"}, spanSpec{trace: n, span: 2, parent: 1, service: "svc"})))
		h.advance(20 * time.Millisecond)
	}
	h.advance(12 * time.Second) // decided after 1s, learned after learn.max (10s)
	require.NoError(t, b.inShard(ctx, 0, func(_ context.Context, s *shard) {
		r := s.due.routes
		for i := range r.table {
			if rt := &r.table[i]; rt.name == "svc / " {
				require.Equal(t, 100*time.Millisecond, time.Duration(r.quiet(rt, s.due.quiet)), "the route learned the shortest quiet")
			}
		}
	}))
	return h
}

// send ingests span span of trace trace on route "svc", a child of parent
// (0: the root), with status.
func (h *safeLearn) send(trace, span, parent uint64, status ptrace.StatusCode) {
	h.t.Helper()
	require.NoError(h.t, h.b.Ingest(context.Background(), encodeSpans(h.t,
		spanSpec{trace: trace, span: span, parent: parent, service: "svc", status: status})))
}

// decided is how many traces were decided.
func (h *safeLearn) decided() int { return decidedCount(h.obs) }

// probed is how many traces were probed: dropped (on probation) and kept.
func (h *safeLearn) probed() probeCounts {
	h.obs.mu.Lock()
	defer h.obs.mu.Unlock()
	return h.obs.probed
}

// sent is how many spans of trace were sent on.
func (h *safeLearn) sent(trace uint64) int { return h.out.count(tid(trace)) }

// decidedCount is how many traces obs saw decided.
func decidedCount(obs *simObserver) int {
	obs.mu.Lock()
	defer obs.mu.Unlock()
	return obs.decided
}

// Without a store or rescue.window, a learned quiet shorter than
// completion.quiet must not drop an error trace whose ERROR span comes
// after it: the learned quiet only probes a trace without an ERROR span,
// and a trace the policies drop then waits completion.quiet, as with
// learning off, and is kept whole by its late ERROR span. A trace that
// already carries an ERROR span still leaves after the learned quiet.
func TestLearnedQuietKeepsLateErrors(t *testing.T) {
	h := safeLearnBuffer(t, false)

	// Trace 100: root now, its ERROR child 500ms later (after the learned
	// 100ms, within the 1s quiet).
	h.send(100, 1, 0, ptrace.StatusCodeUnset)
	h.advance(500 * time.Millisecond)
	require.Zero(t, h.sent(100), "not decided yet")
	h.send(100, 2, 1, ptrace.StatusCodeError)
	// Now it carries an ERROR span: the learned quiet applies from here.
	h.advance(300 * time.Millisecond)
	assert.Equal(t, 2, h.sent(100), "kept whole, after the learned quiet from its ERROR span")

	// Trace 101: its root is an ERROR span: the learned quiet applies at
	// once.
	h.send(101, 1, 0, ptrace.StatusCodeError)
	h.advance(300 * time.Millisecond)
	assert.Equal(t, 1, h.sent(101), "kept after the learned quiet, not completion.quiet")

	// Trace 102, no error: waits completion.quiet (1s), not 100ms.
	before := h.decided()
	h.send(102, 1, 0, ptrace.StatusCodeUnset)
	h.advance(600 * time.Millisecond)
	assert.Equal(t, before, h.decided(), "no ERROR span: not decided before completion.quiet")
	h.advance(600 * time.Millisecond)
	assert.Equal(t, before+1, h.decided(), "decided after completion.quiet")
	assert.Zero(t, h.sent(102), "and dropped")
}

// A trace without an ERROR span that the policies keep at the learned
// quiet's probe leaves then, not after completion.quiet; its later spans
// follow it. A trace dropped at the probe whose later span brings what a
// policy keeps is kept at the next probe, the learned quiet after that
// span, and decided once: its policies ran twice, the second time as a
// redecision.
func TestLearnedQuietProbeKeeps(t *testing.T) {
	h := safeLearnBuffer(t, false)

	before := h.decided()
	h.send(100, 1, 0, ptrace.StatusCodeOk)
	h.advance(200 * time.Millisecond)
	assert.Equal(t, before+1, h.decided(), "kept at the probe")
	assert.Equal(t, 1, h.sent(100))
	h.send(100, 2, 1, ptrace.StatusCodeUnset)
	h.advance(100 * time.Millisecond)
	assert.Equal(t, 2, h.sent(100), "its late span follows it")

	// Trace 101: dropped at the probe, on probation; an OK span 500ms
	// later takes it back to the learned quiet's probe, which keeps it.
	h.send(101, 1, 0, ptrace.StatusCodeUnset)
	h.advance(500 * time.Millisecond)
	assert.Equal(t, before+1, h.decided(), "on probation")
	h.send(101, 2, 1, ptrace.StatusCodeOk)
	h.advance(200 * time.Millisecond)
	assert.Equal(t, before+2, h.decided(), "decided once, at the second probe")
	assert.Equal(t, 2, h.sent(101), "kept whole")
	assert.Equal(t, probeCounts{kept: 2, dropped: 1}, h.probed(), "probes: 101 dropped, then 100 and 101 kept (Observer.Probed)")
}

// With rescue.window (and likewise with the store) a dropped trace is kept
// whole by a late ERROR span, so the learned quiet applies to every trace:
// the same late ERROR span finds the trace dropped after 100ms and rescues
// it.
func TestLearnedQuietShortensWithRescue(t *testing.T) {
	h := safeLearnBuffer(t, true)

	before := h.decided()
	h.send(100, 1, 0, ptrace.StatusCodeUnset)
	h.advance(300 * time.Millisecond)
	assert.Equal(t, before+1, h.decided(), "dropped after the learned quiet")
	assert.Zero(t, h.sent(100))
	h.send(100, 2, 1, ptrace.StatusCodeError)
	h.advance(100 * time.Millisecond)
	assert.Equal(t, 2, h.sent(100), "rescued whole by its late ERROR span")
}

// The store sets the same: a buffer with a store may drop at the learned
// quiet (AttachStore).
func TestAttachStoreMakesDropsRescuable(t *testing.T) {
	b, err := New(testBufferConfig(), func(context.Context, ptrace.Traces) error { return nil }, Settings{})
	require.NoError(t, err)
	for _, s := range b.shards {
		require.False(t, s.due.rescuable)
	}
	b.AttachStore(openTestStore(t, t.TempDir()))
	for _, s := range b.shards {
		assert.True(t, s.due.rescuable)
	}
	b.CloseStore()
}

// A span on probation takes its trace back to its route's shorter class
// (to be probed again), not to the back of the probation class: there it
// would hold up the traces the probe moves in after it, whose deadlines
// are earlier.
func TestLearnedQuietProbationInOrder(t *testing.T) {
	h := safeLearnBuffer(t, false)
	before := h.decided()

	// Trace 200 at 0 ms, trace 201 at 50 ms; 200 is probed (dropped) at
	// 100 ms and gets a span at 120 ms; 201 is probed at 150 ms.
	h.send(200, 1, 0, ptrace.StatusCodeUnset)
	h.advance(50 * time.Millisecond)
	h.send(201, 1, 0, ptrace.StatusCodeUnset)
	h.advance(70 * time.Millisecond)
	h.send(200, 2, 1, ptrace.StatusCodeUnset)
	h.advance(80 * time.Millisecond)
	assert.Equal(t, before, h.decided(), "both dropped at the probe, on probation")

	// 201 is due at 1050 ms (at most a 50 ms grid step later), 200 at
	// 1120 ms.
	h.advance(910 * time.Millisecond) // 1110 ms
	assert.Equal(t, before+1, h.decided(), "201 decided on time, not held up by 200")
	h.advance(100 * time.Millisecond)
	assert.Equal(t, before+2, h.decided())
	assert.Zero(t, h.sent(200)+h.sent(201))
}
