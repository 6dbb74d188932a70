package tracebuf

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// mappedObserver sums the arena's mapped bytes the buffer reports.
type mappedObserver struct {
	NopObserver
	mapped atomic.Int64
}

func (o *mappedObserver) Mapped(bytes int64) { o.mapped.Add(bytes) }

func newArenaTestBuffer(t *testing.T, maxBytes int, opts ...func(*Config)) (*Buffer, *mappedObserver, *clocktest.Fake) {
	t.Helper()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 1000
	cfg.Buffer.MaxBytes = ByteSize(maxBytes)
	for _, o := range opts {
		o(&cfg)
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	obs := &mappedObserver{}
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	t.Cleanup(func() {
		require.NoError(t, b.Shutdown(context.Background()))
		assert.Zero(t, obs.mapped.Load(), "arena memory still reported after shutdown")
	})
	return b, obs, clk
}

// ingestSpike buffers about 8 MB of span records: 40 requests of 50 traces
// (r*1000 + i), each of 4 spans of about 1000 bytes.
func ingestSpike(t *testing.T, b *Buffer) {
	t.Helper()
	ctx := context.Background()
	for r := range uint64(40) {
		traces := make([]uint64, 50)
		for i := range traces {
			traces[i] = r*1000 + uint64(i)
		}
		require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, 4, 1000)))
	}
	require.NoError(t, b.Sync(ctx))
}

// After a spike, the arena gives its memory back once the traces are
// decided, and the self-metric follows it down; the Go heap is asked to give
// back its part once.
func TestBufferGivesArenaMemoryBack(t *testing.T) {
	freed := countFreeOS(t)
	b, obs, clk := newArenaTestBuffer(t, 32<<20)
	ctx := context.Background()
	ingestSpike(t, b)
	s := b.shards[0]
	peak := obs.mapped.Load()
	assert.Equal(t, s.usage.arena.mapped, peak)
	require.Greater(t, peak, int64(8<<20), "about 8 MB of span records buffered")

	clk.Advance(time.Minute) // every trace decided (dropped: no ERROR)
	require.NoError(t, b.Sync(ctx))
	require.Empty(t, s.traces)
	assert.Zero(t, obs.mapped.Load(), "mapped bytes once the buffer is empty (peak %d)", peak)
	assert.Zero(t, s.usage.arena.mapped)
	assert.Equal(t, int32(1), freed.Load(), "the heap asked to give back its part")
}

// A shard whose last traces are decided at a wake-up of its own, with
// nothing left to wake it, still wakes to settle: the timer is armed after
// the compaction that starts settling. (TestSettlingAfterSpike drives each
// step with Sync, which hid a timer armed before it.)
func TestSettlingWakesByItself(t *testing.T) {
	freed := countFreeOS(t)
	b, _, clk := newArenaTestBuffer(t, 32<<20)
	ingestSpike(t, b)

	clk.Advance(time.Minute) // the quiet fires: every trace is decided at this wake-up
	require.Eventually(t, func() bool { return freed.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the drained spike starts settling (freeOS %d)", freed.Load())
	for tick, want := range []int32{2, 3} { // ticks 1 and 2
		clk.Advance(settleTick)
		require.Eventually(t, func() bool { return freed.Load() == want }, 5*time.Second, time.Millisecond,
			"settle tick %d: freeOS %d, want %d", tick+1, freed.Load(), want)
	}
}

// countFreeOS counts freeOS calls until the test and its cleanups (the
// buffer's shutdown, registered later) are done.
func countFreeOS(t *testing.T) *atomic.Int32 {
	var freed atomic.Int32
	freeOS = func() { freed.Add(1) }
	lastFreeOS.Store(0)
	old := freeOS
	t.Cleanup(func() { freeOS = old })
	return &freed
}

func TestFreeOSMemoryRateLimited(t *testing.T) {
	freed := countFreeOS(t)
	t0 := time.Unix(1000, 0)
	for _, at := range []time.Duration{0, freeOSInterval / 2, freeOSInterval - 1, freeOSInterval, freeOSInterval * 3 / 2, 3 * freeOSInterval} {
		freeOSMemory(t0.Add(at))
	}
	assert.Equal(t, int32(3), freed.Load(), "at 0, at the interval and at 3 intervals")
}

// The budget counts the arena's free blocks: traces of small spans, pushed
// out for memory by traces of large spans, leave blocks of classes the
// newcomers cannot use. What the arena holds, in use or spare, stays within
// buffer.max_bytes; it once grew to about twice the budget.
func TestBudgetCountsArenaSpare(t *testing.T) {
	const budget = 16 << 20
	b, _, _ := newArenaTestBuffer(t, budget)
	s := b.shards[0]
	n := uint64(0)
	// Rounds of small spans (~100 B) then large ones (~4 KiB, 3 per trace),
	// each round about 1.5× the budget.
	for round := range 4 {
		spans, size := 1, 60
		if round%2 == 1 {
			spans, size = 3, 4000
		}
		ingestSized(t, b, &n, budget*3/2, spans, size)
		assert.LessOrEqual(t, s.usage.bytes(), s.usage.budget-s.usage.arena.reserve, "round %d: records within their share", round)
		// Mapped and written to: all but the untouched rest of the current chunk.
		held := s.usage.arena.mapped - int64(len(s.usage.arena.cur))
		assert.LessOrEqual(t, held, int64(budget), "round %d: the arena holds %d bytes (%d spare)", round, held, s.usage.arena.spare)
	}
}

// Under load, with room in the budget, the arena keeps spare bytes up to
// its records before it compacts, and a compaction copies no more than it
// gives back: traces of small spans decided among live traces of large ones
// leave blocks the large ones cannot reuse.
func TestArenaSpareFollowsRecords(t *testing.T) {
	for _, tc := range []struct {
		name         string
		small, large int // MiB of records: decided, then live
		compacts     bool
	}{
		{"spare above the reserve, below the records: kept", 12, 20, false},
		{"spare above the records: compacted", 14, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const budget = 64 << 20 // reserve 8 MiB
			b, _, clk := newArenaTestBuffer(t, budget)
			ctx := context.Background()
			s := b.shards[0]
			n := uint64(0)
			// Rootless traces wait out max_wait (10 s): the small ones
			// from 0 s, the large ones from 5 s.
			ingestSized(t, b, &n, tc.small<<20, 1, 60)
			clk.Advance(5 * time.Second)
			large := ingestSized(t, b, &n, tc.large<<20, 3, 4000)
			a := s.usage.arena
			before := CompactedBytes()
			clk.Advance(5*time.Second + time.Millisecond) // the small ones are decided
			require.NoError(t, b.Sync(ctx))
			copied := CompactedBytes() - before
			require.Len(t, s.traces, large, "the large traces live on")
			held := a.mapped - int64(len(a.cur))
			assert.LessOrEqual(t, held, int64(budget), "the arena holds %d bytes (%d spare)", held, a.spare)
			if !tc.compacts {
				assert.Zero(t, copied, "no compaction while the spare bytes are below the records")
				assert.Greater(t, a.spare, a.reserve, "spare bytes kept above the reserve (in use %d)", a.inUse())
				return
			}
			assert.Positive(t, copied, "compacted")
			assert.LessOrEqual(t, copied, a.inUse(), "copied at most the live records")
			assert.Less(t, copied, int64(tc.small<<20), "copied less than it gave back")
		})
	}
}

// ingestSized buffers about bytes of records, in requests of 100 new traces
// numbered on from *n, each of spans spans of about size bytes, waits until
// the shard has taken them in, and returns how many traces it sent.
func ingestSized(t *testing.T, b *Buffer, n *uint64, bytes, spans, size int) int {
	t.Helper()
	ctx := context.Background()
	perTrace := spans * (size + 60)
	requests := bytes / perTrace / 100
	for range requests {
		traces := make([]uint64, 100)
		for i := range traces {
			*n++
			traces[i] = *n
		}
		require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, spans, size)))
	}
	require.NoError(t, b.Sync(ctx))
	return requests * 100
}

// After a spike has drained, the shard keeps settling: it asks the Go heap
// to give back what the end of the spike left at 1, 2, 4 and 8 ticks, and its
// dropped filter forgets the spike's traces once they are two ages old
// (dropAge: max_wait here), letting its tables go; then it stops waking.
func TestSettlingAfterSpike(t *testing.T) {
	freed := countFreeOS(t)
	b, _, clk := newArenaTestBuffer(t, 32<<20)
	ctx := context.Background()
	ingestSpike(t, b)
	s := b.shards[0]
	age := dropAge(shardConfigFor(b.cfg, 1))
	require.Equal(t, b.cfg.Completion.MaxWait, age)

	clk.Advance(time.Minute) // every trace decided and dropped; the spike drains
	require.NoError(t, b.Sync(ctx))
	require.Equal(t, int32(1), freed.Load())
	require.NotZero(t, s.settle.next, "settling")
	spike := tid(39*1000 + 49) // the last trace: the filter holds the latest 500 to 1000
	require.True(t, s.decided.dropped.contains(hashID(&spike)))

	var calls []int32
	for tick := 1; tick <= 12; tick++ {
		clk.Advance(settleTick)
		require.NoError(t, b.Sync(ctx))
		calls = append(calls, freed.Load())
		if time.Duration(tick)*settleTick < age {
			assert.True(t, s.decided.dropped.contains(hashID(&spike)), "tick %d: remembered for an age at least", tick)
		}
	}
	assert.Equal(t, []int32{2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5}, calls, "freeOS at ticks 1, 2, 4 and 8, then no more")
	assert.False(t, s.decided.dropped.contains(hashID(&spike)), "forgotten after two ages")
	assert.True(t, s.decided.dropped.empty(), "the filter let its tables go")
	assert.Zero(t, s.settle.next, "done settling")
	assert.Zero(t, s.usage.arena.mapped, "no chunk kept once no record is in use")
}
