package tracebuf

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// simRoute is a route of the simulated workload: each of its traces has a
// root and one child that arrives gap(i) after the root (i counts the
// route's traces).
type simRoute struct {
	service string
	gap     func(i int) time.Duration
}

// simResult is what a simulation measured, per route (by service).
type simResult struct {
	traces, partial map[string]int // kept traces, and those missing a span at their decision
	bufferTime      time.Duration  // mean time from first span to decision
	quiet           map[string]time.Duration
	counts          map[string]RouteCompletion // summed RouteCompletion reports
}

// simObserver records kept traces' spans at their decision, decision
// latencies and the routes' completion counts.
type simObserver struct {
	NopObserver
	mu      sync.Mutex
	kept    map[[16]byte]int
	latency time.Duration
	decided int
	routes  map[string]RouteCompletion
	probed  probeCounts
}

func (o *simObserver) Probed(kept, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.probed.kept += kept
	o.probed.dropped += dropped
}

func (o *simObserver) Decided(_ string, _ bool, _ int, _ string, latency, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.latency += latency
	o.decided++
}

func (o *simObserver) Kept(t *sampling.Trace, _ sampling.Decision) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kept[t.ID] = t.SpanCount
}

func (o *simObserver) RouteCompletion(c RouteCompletion) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.routes[c.Route]
	s.Route = c.Route
	s.Traces += c.Traces
	s.PartialTraces += c.PartialTraces
	s.LateSpans += c.LateSpans
	o.routes[c.Route] = s
}

// learnConfig keeps every trace, with quiet 1s and learning as given.
func learnConfig(enabled bool) Config {
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 1000
	cfg.Completion.MaxWait = 30 * time.Second
	cfg.Completion.Learn = LearnConfig{
		Enabled: enabled, Min: 100 * time.Millisecond, Max: 10 * time.Second,
		Quantile: 0.99, Margin: 1.5, MaxRoutes: 16,
	}
	cfg.Policies = []sampling.PolicyConfig{sampling.NewPolicyConfig("all", "always_sample", &sampling.AlwaysSampleConfig{})}
	return cfg
}

// simulate starts a trace every 20ms for d, round robin over routes, on a
// fake clock in 10ms steps, and measures the traces started from measureFrom
// on.
func simulate(t *testing.T, cfg Config, routes []simRoute, d, measureFrom time.Duration) simResult {
	t.Helper()
	ctx := context.Background()
	obs := &simObserver{kept: map[[16]byte]int{}, routes: map[string]RouteCompletion{}}
	b, clk := startBuffer(t, cfg, func(context.Context, ptrace.Traces) error { return nil }, obs)
	const step, every = 10 * time.Millisecond, 20 * time.Millisecond
	arrivals := map[time.Duration][]spanSpec{}
	type started struct {
		route int
		at    time.Duration
	}
	traces := map[uint64]started{}
	count := make([]int, len(routes))
	var n uint64
	for at := time.Duration(0); at < d; at += every {
		r := int(n) % len(routes)
		n++
		gap := routes[r].gap(count[r]).Round(step)
		count[r]++
		svc := routes[r].service
		arrivals[at] = append(arrivals[at], spanSpec{trace: n, span: 1, service: svc})
		arrivals[at+gap] = append(arrivals[at+gap], spanSpec{trace: n, span: 2, parent: 1, service: svc})
		traces[n] = started{r, at}
	}
	end := d + cfg.Completion.MaxWait + step
	for now := time.Duration(0); now <= end; now += step {
		require.NoError(t, b.Sync(ctx))
		if specs := arrivals[now]; len(specs) > 0 {
			require.NoError(t, b.Ingest(ctx, encodeSpans(t, specs...)))
			require.NoError(t, b.Sync(ctx))
		}
		clk.Advance(step)
	}
	require.NoError(t, b.Sync(ctx))
	res := simResult{traces: map[string]int{}, partial: map[string]int{}, quiet: map[string]time.Duration{}}
	obs.mu.Lock()
	for id, st := range traces {
		if st.at < measureFrom {
			continue
		}
		svc := routes[st.route].service
		spans, ok := obs.kept[tid(id)]
		require.True(t, ok, "trace %d kept", id)
		res.traces[svc]++
		if spans < 2 {
			res.partial[svc]++
		}
	}
	res.bufferTime = obs.latency / time.Duration(obs.decided)
	res.counts = obs.routes
	obs.mu.Unlock()
	require.NoError(t, b.inShard(ctx, 0, func(_ context.Context, s *shard) {
		r := s.due.routes
		for i := range r.table {
			rt := &r.table[i]
			res.quiet[rt.name] = time.Duration(r.quiet(rt, s.due.quiet))
		}
	}))
	return res
}

func constGap(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

// Two routes of very different tails each get their own quiet: a route
// whose spans all arrive within 40ms of its root is decided after the
// smallest quiet, one whose child comes 3s after the root waits long enough
// for it, and the partial traces of the slow route, all of them with the
// fixed 1s quiet, disappear once it is learned.
func TestLearnedQuietConverges(t *testing.T) {
	routes := []simRoute{
		{"fast", func(i int) time.Duration { return time.Duration(i%5) * 10 * time.Millisecond }},
		{"slow", func(i int) time.Duration { return 3*time.Second + time.Duration(i%10)*20*time.Millisecond }},
	}
	learned := simulate(t, learnConfig(true), routes, 40*time.Second, 30*time.Second)
	fixed := simulate(t, learnConfig(false), routes, 40*time.Second, 30*time.Second)

	assert.Equal(t, 100*time.Millisecond, learned.quiet["fast / "], "fast route: clamped to min")
	assert.GreaterOrEqual(t, learned.quiet["slow / "], time.Duration(float64(3180*time.Millisecond)*1.5))
	assert.LessOrEqual(t, learned.quiet["slow / "], 6*time.Second)
	assert.Equal(t, time.Second, fixed.quiet["slow / "], "learning off: the global quiet")

	assert.Equal(t, 250, learned.traces["slow"])
	assert.Zero(t, learned.partial["slow"], "learned: the slow route's traces are complete")
	assert.Equal(t, fixed.traces["slow"], fixed.partial["slow"], "fixed 1s: every slow trace is partial")
	assert.Zero(t, learned.partial["fast"]+fixed.partial["fast"])
	t.Logf("quiet: learned %v, fixed %v; mean buffer time: learned %v, fixed %v", learned.quiet, fixed.quiet, learned.bufferTime, fixed.bufferTime)
}

// The learned quiet stays within [min, max]: a route whose child comes 4s
// after its root, beyond max 2.5s, gets max.
func TestLearnedQuietClamped(t *testing.T) {
	cfg := learnConfig(true)
	cfg.Completion.Quiet = 2 * time.Second
	cfg.Completion.Learn.Min, cfg.Completion.Learn.Max = 300*time.Millisecond, 2500*time.Millisecond
	res := simulate(t, cfg, []simRoute{{"zero", constGap(0)}, {"far", constGap(4 * time.Second)}}, 20*time.Second, 20*time.Second)
	assert.Equal(t, 300*time.Millisecond, res.quiet["zero / "])
	assert.Equal(t, 2500*time.Millisecond, res.quiet["far / "])
}

// A route whose tail grows learns it from the late spans: its quiet rises
// past the new gap, though no span within quiet ever showed it.
func TestLateSpansRaiseLearnedQuiet(t *testing.T) {
	shift := func(i int) time.Duration {
		if i < 500 {
			return 200 * time.Millisecond
		}
		return 1500 * time.Millisecond
	}
	cfg := learnConfig(true)
	before := simulate(t, cfg, []simRoute{{"r", shift}}, 10*time.Second, 10*time.Second)
	after := simulate(t, cfg, []simRoute{{"r", shift}}, 40*time.Second, 35*time.Second)
	assert.Less(t, before.quiet["r / "], time.Second, "learned from the short gaps")
	assert.GreaterOrEqual(t, after.quiet["r / "], 2250*time.Millisecond, "raised by the late spans")
	assert.Zero(t, after.partial["r"], "the traces started last are complete again")
}

// The route completion counts: with the fixed quiet, every trace of the
// slow route is partial with one late span, none of the fast route's.
func TestRouteCompletionCounts(t *testing.T) {
	res := simulate(t, learnConfig(false), []simRoute{{"fast", constGap(0)}, {"slow", constGap(1500 * time.Millisecond)}},
		4*time.Second, 0)
	assert.Equal(t, RouteCompletion{Route: "fast / ", Traces: 100}, res.counts["fast / "])
	assert.Equal(t, RouteCompletion{Route: "slow / ", Traces: 100, PartialTraces: 100, LateSpans: 100}, res.counts["slow / "])
}

// The route table holds at most max_routes routes, each shard's tracked
// traces at most its ring, and a trace whose route was evicted falls back
// to the global quiet.
func TestRouteTableBounded(t *testing.T) {
	cfg := learnConfig(true)
	cfg.Completion.Learn.MaxRoutes = 4
	var routes []simRoute
	for i := range 20 {
		routes = append(routes, simRoute{fmt.Sprintf("svc-%02d", i), constGap(0)})
	}
	res := simulate(t, cfg, routes, 10*time.Second, 0)
	assert.Len(t, res.quiet, 4)
	for _, q := range res.quiet {
		assert.Equal(t, time.Second, q, "too few traces per route to learn")
	}
	// Every trace was decided, with its route evicted or not.
	total := 0
	for _, n := range res.traces {
		total += n
	}
	assert.Equal(t, 500, total)

	r := newRoutes(cfg.Completion.Learn)
	for i := range 2 * trackedEntries {
		tr := &trace{hash: uint64(i) << 20, route: -1}
		tr.route, _ = r.slot(uint64(i % 7))
		tr.routeGen = r.table[tr.route].gen
		r.decided(tr, true, int64(i))
	}
	assert.LessOrEqual(t, len(r.table), 4)
	assert.LessOrEqual(t, len(r.index), 4)
	assert.LessOrEqual(t, len(r.byTrace), trackedEntries)
	assert.Equal(t, trackedEntries, r.n)
}

// A trace handed over to another gateway leaves its quiet class, so the
// sender's deadlines do not point at it; the receiver decides it on its
// own clock, after its quiet.
func TestHandoverLeavesQuietClass(t *testing.T) {
	ctx := context.Background()
	cfg := learnConfig(true)
	out := &collector{spans: map[[16]byte]int{}}
	a, _ := startBuffer(t, cfg, out.emit, nil)
	require.NoError(t, a.Ingest(ctx, encodeSpans(t, spanSpec{trace: 1, span: 1, service: "s"}, spanSpec{trace: 2, span: 2, parent: 9, service: "s"})))
	require.NoError(t, a.Sync(ctx))
	f, more, err := a.TakeForeign(ctx, 0, func(uint64) bool { return false }, 1<<20)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, 2, f.NTraces)
	require.NoError(t, a.inShard(ctx, 0, func(_ context.Context, s *shard) {
		assert.Zero(t, s.due.used, "no quiet class holds a trace")
		assert.Equal(t, int64(1<<63-1), s.due.next())
	}))

	b, clk := startBuffer(t, cfg, out.emit, nil)
	require.NoError(t, b.Ingest(ctx, f.Traces))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.Quiet - time.Millisecond)
	require.NoError(t, b.Sync(ctx))
	assert.Zero(t, out.count(tid(1)), "not before quiet")
	clk.Advance(time.Millisecond + cfg.Output.BatchTimeout)
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Output.BatchTimeout)
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, 1, out.count(tid(1)))
}

func TestQuietLevels(t *testing.T) {
	levels := quietLevels(int64(100*time.Millisecond), int64(10*time.Second))
	assert.Equal(t, int64(100*time.Millisecond), levels[0])
	assert.Equal(t, int64(10*time.Second), levels[len(levels)-1])
	assert.True(t, sort.SliceIsSorted(levels, func(i, j int) bool { return levels[i] < levels[j] }))
	assert.Len(t, quietLevels(int64(time.Millisecond), int64(time.Hour)), maxLevels, "a wide range takes wider steps")
}

func TestLearnConfigValidate(t *testing.T) {
	valid := DefaultConfig().Completion.Learn
	for _, tc := range []struct {
		name string
		edit func(c *LearnConfig)
		err  string
	}{
		{"min", func(c *LearnConfig) { c.Min = 0 }, "min: must be positive, got 0s"},
		{"max", func(c *LearnConfig) { c.Max = c.Min / 2 }, "max: must be at least min (200ms), got 100ms"},
		{"quantile", func(c *LearnConfig) { c.Quantile = 1 }, "quantile: must be in [0.5, 1), got 1"},
		{"margin", func(c *LearnConfig) { c.Margin = 0.5 }, "margin: must be between 1 and 10, got 0.5"},
		{"max_routes", func(c *LearnConfig) { c.MaxRoutes = 0 }, "max_routes: must be between 1 and 1048576, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			assert.EqualError(t, c.Validate(), tc.err)
		})
	}
	require.NoError(t, valid.Validate())
	// A shorter max_wait cuts the learned bounds instead of failing the
	// config: a config that only sets max_wait keeps working.
	c := DefaultConfig().Completion
	c.MaxWait = 5 * time.Second
	require.NoError(t, c.Validate())
	cut := newCompletion(c, 0)
	require.NotNil(t, cut.routes)
	assert.Equal(t, int64(5*time.Second), cut.routes.horizon)
	assert.LessOrEqual(t, cut.routes.levels[len(cut.routes.levels)-1], int64(5*time.Second))
	c.MaxWait = 100 * time.Millisecond
	c.Quiet = 50 * time.Millisecond
	require.NoError(t, c.Validate())
	cut = newCompletion(c, 0)
	require.NotNil(t, cut.routes, "min is cut to max_wait too")
	for _, q := range cut.routes.levels {
		assert.LessOrEqual(t, q, int64(100*time.Millisecond))
	}
}

// A shard that decides more than the ring holds per horizon tracks a
// sample of its traces, by trace ID hash, and scales their counts by it.
func TestTrackedSampleScalesCounts(t *testing.T) {
	r := newRoutes(learnConfig(true).Completion.Learn)
	horizon := r.horizon
	rt, _ := r.slot(42)
	decide := func(hash uint64, now int64) {
		tr := &trace{hash: hash, route: rt, routeGen: r.table[rt].gen}
		r.decided(tr, true, now)
	}
	for i := range 3 * trackedEntries { // 3 ring sizes in the first horizon
		decide(uint64(i+1)<<40, 1)
	}
	decide(1<<40, horizon) // a new epoch: 1 in 4 is tracked from now on
	require.Equal(t, uint64(4), r.sample)
	r.dirty, r.table[rt].traces, r.table[rt].dirty = r.dirty[:0], 0, false

	decide(4<<40, horizon+1) // tracked
	decide(5<<40, horizon+1) // not tracked
	r.late(4<<40, horizon+2)
	r.late(4<<40, horizon+3)
	r.late(5<<40, horizon+3)
	got := r.table[rt]
	assert.Equal(t, int64(2), got.traces)
	assert.Equal(t, int64(4), got.partial, "one tracked partial trace stands for 4")
	assert.Equal(t, int64(8), got.late)
}
