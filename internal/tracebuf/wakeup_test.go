package tracebuf

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

// armClock is a fake clock whose timers record the instants they are set
// to fire at: each is at most one wake-up of a shard.
type armClock struct {
	*clocktest.Fake
	mu   sync.Mutex
	arms []time.Time
}

func (c *armClock) NewTimer(d time.Duration) clock.Timer {
	return &armTimer{Timer: c.Fake.NewTimer(d), c: c}
}

func (c *armClock) armed() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.arms...)
}

type armTimer struct {
	clock.Timer
	c *armClock
}

func (t *armTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.c.arms = append(t.c.arms, t.c.Now().Add(d))
	t.c.mu.Unlock()
	t.Timer.Reset(d)
}

func (o *decisionLog) count(decision string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, d := range o.decisions {
		if d == decision {
			n++
		}
	}
	return n
}

// TestShardWakesOnTheGrid: 100 traces whose quiet deadlines are 7 ms apart,
// a tenth of them kept (output batches), wake their shard at most once per
// grid step (gridFor(quiet / 20)) instead of once per deadline, every
// wake-up on the common grid, and every trace is still decided by its quiet
// rule; once everything is decided and handed on, an idle shard arms no
// timer at all. (Before the grid: one wake-up per deadline, 7 ms apart.)
func TestShardWakesOnTheGrid(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	grid := time.Duration(gridFor(int64(cfg.Completion.Quiet / wakeGridShare)))
	require.Greater(t, grid, 7*time.Millisecond, "the test needs deadlines closer than the grid")
	clk := &armClock{Fake: clocktest.NewFake(time.Unix(0, 0))}
	obs := &decisionLog{}
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	t.Cleanup(func() { require.NoError(t, b.Shutdown(context.Background())) })

	const n = 100
	start := clk.Now()
	for i := range uint64(n) {
		status := ptrace.StatusCodeOk
		if i%10 == 0 {
			status = ptrace.StatusCodeError // kept on arrival: an output batch
		}
		require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: i + 1, span: 1, status: status, start: 1, end: 2})))
		require.NoError(t, b.Sync(ctx))
		clk.Advance(7 * time.Millisecond)
	}
	ingested := len(clk.armed())
	// Idle but for the timers: 1 ms steps past the last deadline.
	for clk.Now().Sub(start) < 3*time.Second {
		clk.Advance(time.Millisecond)
		require.NoError(t, b.Sync(ctx))
	}
	require.Equal(t, n-n/10, obs.count(ReasonQuiet+"/drop"), "every OK trace decided by its quiet rule")
	for i := range uint64(n) {
		if i%10 == 0 {
			assert.Equal(t, 1, out.count(tid(i+1)), "kept trace %d handed on", i+1)
		}
	}

	arms := clk.armed()
	for _, at := range arms {
		assert.Zero(t, at.Sub(time.Unix(0, 0))%grid, "wake-up at %v is on the %v grid", at, grid)
	}
	// The deadlines span 700 ms and then 1 s of quiet: ≤ 700 ms / grid + 2
	// wake-ups once ingest ends (100 without the grid), and no more than one
	// per grid step overall.
	idle := arms[ingested:]
	assert.LessOrEqual(t, len(idle), int(700*time.Millisecond/grid)+2, "wake-ups after ingest: %v", idle)
	assert.LessOrEqual(t, len(arms), int(clk.Now().Sub(start)/grid)+1, "wake-ups overall")

	// Nothing due: an idle minute arms nothing.
	before := len(clk.armed())
	for range 60 {
		clk.Advance(time.Second)
		require.NoError(t, b.Sync(ctx))
	}
	assert.Len(t, clk.armed(), before, "an idle shard sets no timer")
}

// The grid step of a deadline is the coarsest nested step (wakeGridMax,
// 50 ms, halved) within the lateness it tolerates.
func TestGridFor(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, tc := range []struct{ tol, want int64 }{
		{10 * 1000 * ms / 20, 50 * ms}, // quiet 10 s
		{2000 * ms / 20, 50 * ms},      // quiet 2 s (the default)
		{1000 * ms / 20, 50 * ms},
		{500 * ms / 20, 25 * ms},
		{400 * ms / 20, 25 * ms / 2},
		{200 * ms / 20, 25 * ms / 4}, // the least learned level
		{0, 1},
	} {
		g := gridFor(tc.tol)
		assert.Equal(t, tc.want, g, "tolerance %v", time.Duration(tc.tol))
		assert.Zero(t, wakeGridMax%g, "the %v grid nests in the 50 ms one", time.Duration(g))
		at := 7*g + 1
		assert.Equal(t, 8*g, roundUp(at, g))
		assert.Equal(t, 8*g, roundUp(8*g, g))
	}
	assert.Equal(t, int64(math.MaxInt64), roundUp(math.MaxInt64, 100*ms))
}

// TestTimerDecisionLeavesAtItsWakeUp: a trace kept by its quiet rule at a
// timer wake-up is handed on at that wake-up, not one output batch timeout
// later (another wake-up of the process, and 50–75 ms more latency before
// the output batch went on the grid).
func TestTimerDecisionLeavesAtItsWakeUp(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Policies = []sampling.PolicyConfig{sampling.NewPolicyConfig("all", "always_sample", &sampling.AlwaysSampleConfig{})}
	clk := clocktest.NewFake(time.Unix(0, 0))
	emitted := make(chan time.Time, 4)
	emit := func(context.Context, ptrace.Traces) error {
		emitted <- clk.Now()
		return nil
	}
	b, err := New(cfg, emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	t.Cleanup(func() { require.NoError(t, b.Shutdown(context.Background())) })

	clk.Advance(3 * time.Millisecond)
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: 1, span: 1, start: 1, end: 2})))
	// Taken in at 3 ms even when the Ingest call found the goroutine busy
	// and queued the spans to it, before the clock moves again.
	require.NoError(t, b.Sync(ctx))
	grid := time.Duration(gridFor(int64(cfg.Completion.Quiet / wakeGridShare)))
	due := (3*time.Millisecond + cfg.Completion.Quiet + grid - 1) / grid * grid // the quiet deadline on the grid
	clk.Advance(due - 3*time.Millisecond - time.Millisecond)
	select {
	case at := <-emitted:
		require.Failf(t, "handed on before its quiet deadline", "at %v", at.Sub(time.Unix(0, 0)))
	default:
	}
	clk.Advance(time.Millisecond) // the timer fires: the goroutine decides
	select {
	case at := <-emitted:
		assert.Equal(t, due, at.Sub(time.Unix(0, 0)), "handed on at the wake-up that decided it")
	case <-time.After(5 * time.Second):
		require.Fail(t, "not handed on at the wake-up that decided it")
	}
}
