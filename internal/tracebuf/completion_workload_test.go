package tracebuf

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/workload"
	"github.com/tailsift/tailsift/sampling"
)

// workloadResult is what one run of the benchmark workload measured.
type workloadResult struct {
	kept, partial int           // kept traces, and those missing spans at their decision
	partialOnTime int           // partial, not counting traces with spans held back by design (10-30 s)
	bufferTime    time.Duration // mean time from first span to decision
	// Error traces, and those kept (mixed policies: the others are not
	// all kept). A kept trace's later spans follow it (the kept cache).
	errors, errorsKept int
}

// delayed is a request held back by its service's export delay.
type delayed struct {
	at  int64
	buf []byte
}

type delayedHeap []delayed

func (h delayedHeap) Len() int           { return len(h) }
func (h delayedHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h delayedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayedHeap) Push(x any)        { *h = append(*h, x.(delayed)) }
func (h *delayedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// runWorkload replays the benchmark workload (internal/workload, the bench
// shape: 50 services, each with its own SDK batching delay of 0.2-5 s) on a
// fake clock in 10ms steps, every trace kept (mixed: 1 % error traces, they
// and 10 % of the rest kept), and measures its partial traces and buffer time. In that workload a trace's root span comes in
// its last request, so no quiet misses a span of it; to give routes a tail
// after their root, a quarter of the services that own no root span (drawn
// from the seed) export through a queue that delays their requests by 0.5-6
// s each (a fixed delay per service), as an agent tier or a message
// consumer does. A route's tail is then the largest delay among the
// services its traces call. rescue sets rescue.window, as a store would
// (completion.rescuable): the learned quiet then shortens every trace's
// wait, not only that of traces with an ERROR span.
func runWorkload(t *testing.T, seed int64, learn, rescue, mixed bool, d time.Duration) workloadResult {
	t.Helper()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Shards = 1
	cfg.Completion.Learn.Enabled = learn
	if rescue {
		cfg.Rescue.Window = time.Minute
	}
	if v := os.Getenv("TAILSIFT_COMPLETION_LEARN"); v != "" { // "quantile,margin" to explore others
		_, err := fmt.Sscanf(v, "%g,%g", &cfg.Completion.Learn.Quantile, &cfg.Completion.Learn.Margin)
		require.NoError(t, err)
	}
	cfg.Policies = []sampling.PolicyConfig{sampling.NewPolicyConfig("all", "always_sample", &sampling.AlwaysSampleConfig{})}
	if mixed {
		cfg.Policies = []sampling.PolicyConfig{
			sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
			sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 10}),
		}
	}
	require.NoError(t, cfg.Validate())
	require.NoError(t, cfg.Completion.Validate())
	obs := &simObserver{kept: map[[16]byte]int{}, routes: map[string]RouteCompletion{}}
	b, clk := startBuffer(t, cfg, func(context.Context, ptrace.Traces) error { return nil }, obs)
	wcfg := workload.Config{Seed: seed, Rate: 2000, Duration: d, Templates: 200}
	if mixed {
		wcfg.ErrorPct = 1 // the benchmark's default
	}
	g, err := workload.NewGenerator(wcfg)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	var extra [workload.NumServices]int64
	for svc := workload.EntryServices; svc < workload.NumServices; svc++ {
		if rng.Float64() < 0.25 {
			extra[svc] = int64(500*time.Millisecond) + rng.Int64N(int64(5500*time.Millisecond))
		}
	}
	var queue delayedHeap
	const step = int64(10 * time.Millisecond)
	total := map[[16]byte]int{}
	heldBack := map[[16]byte]bool{}
	errorTrace := map[[16]byte]bool{}
	var now int64
	advance := func(to int64) {
		for {
			for len(queue) > 0 && queue[0].at <= now {
				require.NoError(t, b.Ingest(ctx, heap.Pop(&queue).(delayed).buf))
				require.NoError(t, b.Sync(ctx))
			}
			if now+step > to {
				return
			}
			clk.Advance(time.Duration(step))
			now += step
			require.NoError(t, b.Sync(ctx))
		}
	}
	for r := g.Next(); r != nil; r = g.Next() {
		advance(r.SendV)
		for _, tr := range r.Traces {
			total[tr.Inst.TraceID] += int(tr.Spans)
			if tr.Inst.T.Late > 0 {
				heldBack[tr.Inst.TraceID] = true
			}
			if tr.Inst.T.Class == workload.ClassError {
				errorTrace[tr.Inst.TraceID] = true
			}
		}
		buf := g.AppendRequest(nil, r, 1_750_000_000_000_000_000)
		if e := extra[r.Lane]; e > 0 {
			heap.Push(&queue, delayed{at: r.SendV + e, buf: buf})
			continue
		}
		require.NoError(t, b.Ingest(ctx, buf))
		require.NoError(t, b.Sync(ctx))
	}
	advance(now + 6*int64(time.Second))
	advance(now + int64(cfg.Completion.MaxWait) + step)
	var res workloadResult
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for id, spans := range obs.kept {
		res.kept++
		if spans < total[id] {
			res.partial++
			if !heldBack[id] {
				res.partialOnTime++
			}
		}
	}
	res.bufferTime = obs.latency / time.Duration(obs.decided)
	for id := range errorTrace {
		res.errors++
		if obs.kept[id] > 0 {
			res.errorsKept++
		}
	}
	return res
}

// TestLearnedCompletionOnWorkload compares learned and fixed quiet on the
// benchmark workload, same seeds, same run, 120 s of workload per seed,
// every trace kept: with a store (here rescue.window, which makes drops
// rescuable alike) and without one (where the learned quiet only probes a
// trace: kept, it leaves; dropped, it waits out completion.quiet), fewer
// partial kept traces at no more mean buffer time. Then with mixed
// policies (the error traces and 10 % of the rest) and no store: every
// error trace that a fixed quiet keeps is kept still, though most traces
// are dropped at the probe.
// TAILSIFT_COMPLETION_SEEDS=n runs seeds 1..n (docs/completion.md); by
// default seed 1.
func TestLearnedCompletionOnWorkload(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("replays 120 s of the workload five times: about 25 s, minutes under -race")
	}
	seeds, d := 1, 120*time.Second
	if n := os.Getenv("TAILSIFT_COMPLETION_SEEDS"); n != "" {
		_, err := fmt.Sscan(n, &seeds)
		require.NoError(t, err)
	}
	line := func(r workloadResult) string {
		s := fmt.Sprintf("kept %d, partial %d (%.2f %%), partial not held back %d, mean buffer %v",
			r.kept, r.partial, 100*float64(r.partial)/float64(r.kept), r.partialOnTime, r.bufferTime.Round(time.Millisecond))
		if r.errors > 0 {
			s += fmt.Sprintf(", error traces %d, kept %d", r.errors, r.errorsKept)
		}
		return s
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		fixed := runWorkload(t, seed, false, false, false, d)
		learned := runWorkload(t, seed, true, true, false, d)
		safe := runWorkload(t, seed, true, false, false, d)
		t.Logf("seed %d | fixed: %s | learned, with a store: %s | learned, no store: %s", seed, line(fixed), line(learned), line(safe))
		assert.Equal(t, fixed.kept, learned.kept)
		assert.Equal(t, fixed.kept, safe.kept)
		assert.Less(t, learned.partial, fixed.partial, "seed %d: fewer partial kept traces", seed)
		assert.LessOrEqual(t, learned.bufferTime, fixed.bufferTime, "seed %d: no more mean buffer time", seed)
		assert.Less(t, safe.partial, fixed.partial, "seed %d, no store: fewer partial kept traces", seed)
		assert.LessOrEqual(t, safe.bufferTime, fixed.bufferTime, "seed %d, no store: no more mean buffer time", seed)

		mixedFixed := runWorkload(t, seed, false, false, true, d)
		mixed := runWorkload(t, seed, true, false, true, d)
		t.Logf("seed %d, mixed policies | fixed: %s | learned, no store: %s", seed, line(mixedFixed), line(mixed))
		require.Positive(t, mixed.errors)
		assert.Equal(t, mixedFixed.errors, mixed.errors)
		assert.GreaterOrEqual(t, mixed.errorsKept, mixedFixed.errorsKept,
			"seed %d, no store: every error trace the fixed quiet keeps is kept", seed)
	}
}
