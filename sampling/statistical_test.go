package sampling_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// The statistical tests check that what a sampler keeps can be counted
// back: each kept trace stands for 1/p traces, p being the probability its
// threshold says (head and tail together), and the sum of 1/p over the kept
// traces of a group (a budget class, a dynamic key) is an unbiased estimate
// of the group's true count (Horvitz–Thompson). Its variance is
// Σ over all traces of (1-p)/p², estimated without bias by Σ over the kept
// traces of (1-p)/p²; the tests accept |estimate - truth| ≤ 4σ, which a
// correct sampler fails with probability 6e-5 per group. The seeds are
// fixed, so a run is reproducible; a sampler whose thresholds misstate its
// probabilities (a bias of a few per cent over a million traces) is many σ
// off.

// estimate accumulates the kept traces of one group.
type estimate struct {
	truth    int     // traces of the group, kept or not
	kept     int     // traces kept
	adjusted float64 // Σ 1/p over the kept
	variance float64 // Σ (1-p)/p² over the kept
}

func (e *estimate) add(d sampling.Decision) {
	e.truth++
	if !d.Keep() {
		return
	}
	p := d.Threshold.Probability()
	e.kept++
	e.adjusted += 1 / p
	e.variance += (1 - p) / (p * p)
}

// check asserts that the adjusted count is within 4σ of the truth, and
// logs the figures.
func (e *estimate) check(t *testing.T, group string) {
	t.Helper()
	sigma := math.Sqrt(e.variance)
	t.Logf("%-14s true %8d  kept %7d  adjusted %10.1f  error %+6.2fσ (σ %.1f, %.3f%% of true)",
		group, e.truth, e.kept, e.adjusted, (e.adjusted-float64(e.truth))/math.Max(sigma, 1e-9), sigma,
		100*sigma/float64(e.truth))
	require.Positive(t, e.kept, "%s: nothing kept", group)
	// Groups kept whole have σ = 0 and must add up exactly (up to float
	// rounding of 1/p).
	assert.InDelta(t, float64(e.truth), e.adjusted, 4*sigma+1e-6*float64(e.truth), group)
}

// statTrace fills tr with a trace of random identity decided at now.
func statTrace(tr *sampling.Trace, rng *rand.Rand, now int64) {
	*tr = sampling.Trace{SpanCount: 1, Now: now, StatusMask: sampling.StatusOKBit}
	tr.SetIdentity(randomID(rng), nil)
	tr.Start = 1_700_000_000_000_000_000
	tr.End = tr.Start + 10*ms
}

const statTraces = 1_000_000

// TestStatisticalProbabilistic: the probabilistic policy keeps its fraction
// within 3σ, and adjusted counts add up for it and for the errors class.
func TestStatisticalProbabilistic(t *testing.T) {
	const q = 0.1
	e := newEngine(t, statusPolicy("errors", "ERROR"), probPolicy("baseline", 100*q))
	rng := rand.New(rand.NewPCG(101, 102))
	groups := map[string]*estimate{"errors": {}, "rest": {}}
	var tr sampling.Trace
	for i := range statTraces {
		statTrace(&tr, rng, int64(i)*sec/5000)
		g := "rest"
		if rng.IntN(50) == 0 {
			tr.StatusMask, g = sampling.StatusErrorBit, "errors"
		}
		groups[g].add(e.Decide(&tr))
	}
	rest := groups["rest"]
	frac := float64(rest.kept) / float64(rest.truth)
	sigma := math.Sqrt(q * (1 - q) / float64(rest.truth))
	t.Logf("kept fraction %.5f, configured %.2f, σ %.5f (%+.2fσ)", frac, q, sigma, (frac-q)/sigma)
	assert.InDelta(t, q, frac, 3*sigma, "kept fraction")
	groups["errors"].check(t, "errors")
	rest.check(t, "rest")
}

// zipfKeys returns a sampler of n keys with weights 1/(k+1): key 0 is n
// times as frequent as the rarest.
func zipfKeys(n int) func(rng *rand.Rand) int {
	cum := make([]float64, n)
	total := 0.0
	for k := range n {
		total += 1 / float64(k+1)
		cum[k] = total
	}
	return func(rng *rand.Rand) int {
		k, _ := slices.BinarySearch(cum, rng.Float64()*total)
		return min(k, n-1)
	}
}

// TestStatisticalDynamic: per key, the dynamic policy's adjusted counts add
// up, though each key's probability changes every interval.
func TestStatisticalDynamic(t *testing.T) {
	const (
		nKeys = 40
		rate  = 5000 // traces per second: 200 s of traffic
	)
	e := newEngine(t, dynPolicy("dyn", sampling.DynamicConfig{
		GoalTracesPerSecond: 100, AdjustmentInterval: 10 * time.Second,
	}))
	rng := rand.New(rand.NewPCG(103, 104))
	key := zipfKeys(nKeys)
	keys := make([]estimate, nKeys)
	var all estimate
	var tr sampling.Trace
	for i := range statTraces {
		statTrace(&tr, rng, int64(i)*sec/rate)
		k := key(rng)
		tr.Keys[0], tr.KeySet = uint64(k)*0x9E3779B97F4A7C15, 1
		d := e.Decide(&tr)
		keys[k].add(d)
		all.add(d)
	}
	secs := float64(statTraces) / rate
	t.Logf("kept %.1f traces/s for a goal of 100", float64(all.kept)/secs)
	// The goal, give or take the cold start (every trace kept until the
	// goal of one interval is reached) and the averages' noise.
	assert.InEpsilon(t, 100, float64(all.kept)/secs, 0.1)
	all.check(t, "all")
	for k := range keys {
		keys[k].check(t, fmt.Sprintf("key %d", k))
	}
	// Frequent keys are sampled down more than rare ones.
	assert.Less(t, float64(keys[0].kept)/float64(keys[0].truth), 0.5*float64(keys[nKeys-1].kept)/float64(keys[nKeys-1].truth))
}

// budgetStatEngine: errors (never dropped), slow, and the rest kept by a
// probabilistic and a dynamic policy, under a budget in traces per second.
func budgetStatEngine(t *testing.T, tps float64) *sampling.Engine {
	t.Helper()
	cfgs := []sampling.PolicyConfig{
		statusPolicy("errors", "ERROR"),
		latencyPolicy("slow", 500, 0),
		probPolicy("baseline", 20),
		dynPolicy("dynamic", sampling.DynamicConfig{GoalTracesPerSecond: 200, AdjustmentInterval: 10 * time.Second}),
	}
	b := sampling.BudgetConfig{TracesPerSecond: tps, Classes: []sampling.BudgetClass{
		{Name: "errors", Policies: []string{"errors"}, NeverDrop: true},
		{Name: "slow", Policies: []string{"slow"}},
		{Name: "rest", Policies: []string{"baseline", "dynamic"}},
	}}
	require.NoError(t, sampling.ValidateBudget(&b, cfgs))
	e, err := sampling.NewEngine(cfgs, sampling.WithBudget(b))
	require.NoError(t, err)
	return e
}

// runBudgetStat decides n traces at 5000/s: 2% errors, slowPct % slow, the
// rest over 20 Zipf keys; it returns the estimates per class.
func runBudgetStat(e *sampling.Engine, rng *rand.Rand, n, slowPct int) map[string]*estimate {
	classes := map[string]*estimate{"errors": {}, "slow": {}, "rest": {}}
	key := zipfKeys(20)
	var tr sampling.Trace
	for i := range n {
		statTrace(&tr, rng, int64(i)*sec/5000)
		tr.Keys[0], tr.KeySet = uint64(key(rng)), 1
		class := "rest"
		switch r := rng.IntN(100); {
		case r < 2:
			tr.StatusMask, class = sampling.StatusErrorBit, "errors"
		case r < 2+slowPct:
			tr.End, class = tr.Start+800*ms, "slow"
		}
		classes[class].add(e.Decide(&tr))
	}
	return classes
}

// TestStatisticalBudget: with a budget and three classes, each class's
// adjusted counts add up. The demand is errors 100/s (never dropped), slow
// 250/s, and the rest (20% or the dynamic share of 4650/s) about 950/s.
func TestStatisticalBudget(t *testing.T) {
	t.Run("rest thinned", func(t *testing.T) {
		// 500/s: errors and slow kept whole, the rest gets 150 of ~950.
		e := budgetStatEngine(t, 500)
		classes := runBudgetStat(e, rand.New(rand.NewPCG(105, 106)), statTraces, 5)
		for _, c := range e.ClassProbabilities(nil) {
			t.Logf("class %-6s p %.4f demand %.1f/s", c.Name, c.Probability, c.Demand)
		}
		kept := classes["errors"].kept + classes["slow"].kept + classes["rest"].kept
		t.Logf("kept %.1f traces/s for a budget of 500", float64(kept)/(statTraces/5000))
		assert.InEpsilon(t, 500, float64(kept)/(statTraces/5000), 0.05)
		for _, name := range []string{"errors", "slow", "rest"} {
			classes[name].check(t, name)
		}
	})
	t.Run("slow thinned", func(t *testing.T) {
		// 300/s with 8% slow (400/s): errors take 100, slow gets 200 of
		// 400, the rest is starved (p = 2^-56) and is not checked: its
		// adjusted count is unbiased but useless.
		e := budgetStatEngine(t, 300)
		classes := runBudgetStat(e, rand.New(rand.NewPCG(107, 108)), statTraces/2, 8)
		p := map[string]float64{}
		for _, c := range e.ClassProbabilities(nil) {
			p[c.Name] = c.Probability
		}
		assert.InEpsilon(t, 0.5, p["slow"], 0.1)
		assert.Equal(t, otelsampling.MinSamplingProbability, p["rest"])
		for _, name := range []string{"errors", "slow"} {
			classes[name].check(t, name)
		}
	})
}

// TestStatisticalHeadSampled: traces head-sampled at 1/2 or 1/4 (their
// tracestate's th) reach the tail only if their randomness passes the head
// threshold, as in reality; kept at q by the tail, they carry p·q, and the
// adjusted counts add up to the traces before head sampling.
func TestStatisticalHeadSampled(t *testing.T) {
	const q = 0.1
	e := newEngine(t, statusPolicy("errors", "ERROR"), probPolicy("baseline", 100*q))
	rng := rand.New(rand.NewPCG(109, 110))
	heads := []struct {
		state string
		th    otelsampling.Threshold
	}{{"ot=th:8", th(t, "8")}, {"ot=th:c", th(t, "c")}}
	qth := probTh(t, q)
	groups := map[string]*estimate{"errors": {}, "rest": {}}
	var tr sampling.Trace
	reached := 0
	// 1.5M traces before head sampling, of which 3/8 (half at 1/2, half at
	// 1/4), about 560k, reach the tail.
	for i := range statTraces * 3 / 2 {
		id := randomID(rng)
		h := heads[rng.IntN(2)]
		g := "rest"
		isErr := rng.IntN(50) == 0
		if isErr {
			g = "errors"
		}
		if !h.th.ShouldSample(otelsampling.TraceIDToRandomness(id)) {
			groups[g].add(sampling.Decision{}) // dropped by the head sampler
			continue
		}
		reached++
		statTrace(&tr, rng, int64(i)*sec/5000)
		tr.SetIdentity(id, []byte(h.state))
		if isErr {
			tr.StatusMask = sampling.StatusErrorBit
		}
		d := e.Decide(&tr)
		if d.Keep() {
			// Errors carry the head's p, the rest p·q.
			want := tr.Scale(qth)
			if isErr {
				want = h.th
			}
			require.Equal(t, want, d.Threshold)
		}
		groups[g].add(d)
	}
	t.Logf("%d traces reached the tail", reached)
	groups["errors"].check(t, "errors")
	groups["rest"].check(t, "rest")
}
