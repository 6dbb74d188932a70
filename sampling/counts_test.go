package sampling_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// The count tests check, for each policy type that keeps a subset with a
// probability of its own (issue #12, "right counts from every policy"),
// that the adjusted counts of the traces it keeps add up to the traces
// that reached it (estimate.check: within 4σ, σ from the Horvitz–Thompson
// variance), that each kept trace's threshold is consistent with the
// randomness its spans carry (the marker's rv if it writes one), and, for
// the limiters, that the rate holds.

// countRun is one simulated stream of traces.
type countRun struct {
	n       int     // traces
	perSec  float64 // traces per second
	heads   []string
	cost    func(rng *rand.Rand, tr *sampling.Trace) // sets spans and size
	classOf func(rng *rand.Rand, tr *sampling.Trace) string
}

// countResult is what a run kept, per class, and the cost the limiters
// count: spans and bytes of every kept trace.
type countResult struct {
	classes          map[string]*estimate
	keptSpans, bytes float64
	secs             float64
}

// run decides r.n traces with e. A trace head-sampled away (its
// randomness below the head threshold picked from r.heads) is counted in
// its class without reaching e, as in reality.
func (r countRun) run(t *testing.T, e *sampling.Engine, seed uint64) countResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	res := countResult{classes: map[string]*estimate{}, secs: float64(r.n) / r.perSec}
	var tr sampling.Trace
	for i := range r.n {
		statTrace(&tr, rng, int64(float64(i)*float64(sec)/r.perSec))
		if len(r.heads) > 0 {
			id := randomID(rng)
			tr.SetIdentity(id, []byte(r.heads[rng.IntN(len(r.heads))]))
		}
		if r.cost != nil {
			r.cost(rng, &tr)
		}
		class := "all"
		if r.classOf != nil {
			class = r.classOf(rng, &tr)
		}
		g := res.classes[class]
		if g == nil {
			g = &estimate{}
			res.classes[class] = g
		}
		if tr.HasHead && !tr.HeadThreshold.ShouldSample(tr.Randomness) {
			g.add(sampling.Decision{})
			continue
		}
		d := e.Decide(&tr)
		g.add(d)
		if !d.Keep() {
			continue
		}
		res.keptSpans += float64(tr.SpanCount)
		res.bytes += float64(tr.SizeBytes)
		rnd, ok := e.Randomness(&tr, d)
		if !ok {
			rnd = tr.Randomness
		}
		require.True(t, d.Threshold.ShouldSample(rnd), "trace %d: threshold %s above the randomness its spans carry", i, d.Threshold.TValue())
	}
	return res
}

func spans1to8(rng *rand.Rand, tr *sampling.Trace) {
	tr.SpanCount = 1 + rng.IntN(8)
	tr.SizeBytes = uint64(tr.SpanCount) * (200 + uint64(rng.IntN(400)))
}

func limiterPolicy(typ string, perSec int64, mode sampling.LimitMode) sampling.PolicyConfig {
	if typ == "bytes_limiting" {
		return sampling.NewPolicyConfig("limit", typ, &sampling.BytesLimitingConfig{BytesPerSecond: perSec, Mode: mode})
	}
	return sampling.NewPolicyConfig("limit", typ, &sampling.RateLimitingConfig{SpansPerSecond: perSec, Mode: mode})
}

// TestCountsLimiting: rate_limiting and bytes_limiting at about a tenth of
// the demand. In consistent mode (the default) the adjusted counts add up
// and the kept cost stays within the rate plus the burst spent once
// (2×rate by default) give or take the bucket's deficit (at most the burst
// again). In strict mode (contrib's) the kept traces count about a tenth of
// the traffic: the test shows that failure, which is the 0.175.
func TestCountsLimiting(t *testing.T) {
	for _, typ := range []string{"rate_limiting", "bytes_limiting"} {
		// Demand: 4.5 spans × 400 B × 5000/s ≈ 22500 spans/s, 9 MB/s.
		perSec := int64(2000)
		if typ == "bytes_limiting" {
			perSec = 800_000
		}
		for _, heads := range [][]string{nil, {"ot=th:8", "ot=th:c", ""}} {
			name := typ
			if heads != nil {
				name += "/head-sampled"
			}
			t.Run(name, func(t *testing.T) {
				r := countRun{n: 300_000, perSec: 5000, heads: heads, cost: spans1to8}
				res := r.run(t, newEngine(t, limiterPolicy(typ, perSec, sampling.LimitConsistent)), 201)
				res.classes["all"].check(t, "all")
				kept := res.keptSpans
				if typ == "bytes_limiting" {
					kept = res.bytes
				}
				rate, burst := float64(perSec)*res.secs, 2*float64(perSec)
				t.Logf("kept %.0f per second for a rate of %d", kept/res.secs, perSec)
				assert.LessOrEqual(t, kept, rate+2*burst, "the rate holds, burst and deficit included")
				assert.GreaterOrEqual(t, kept, rate-burst, "the rate is used")

				strict := r.run(t, newEngine(t, limiterPolicy(typ, perSec, sampling.LimitStrict)), 201).classes["all"]
				t.Logf("strict: adjusted %.0f of %d (%.3f)", strict.adjusted, strict.truth, strict.adjusted/float64(strict.truth))
				assert.Less(t, strict.adjusted, 0.5*float64(strict.truth), "strict counts come out low")
			})
		}
	}
}

// TestCountsNot: not over a sampler keeps what the sampler refuses, with
// the complement probability on the reflected randomness; head-sampled
// traces included. not over a deterministic policy keeps with p = 1.
func TestCountsNot(t *testing.T) {
	heads := []string{"ot=th:8", "ot=th:c", ""}
	tests := []struct {
		name string
		sub  sampling.PolicyConfig
		cost func(*rand.Rand, *sampling.Trace)
	}{
		{"probabilistic", probPolicy("p", 30), nil},
		{"probabilistic with hash_salt", sampling.NewPolicyConfig("p", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 70, HashSalt: "s"}), nil},
		{"rate_limiting", limiterPolicy("rate_limiting", 2000, sampling.LimitConsistent), spans1to8},
		{"status_code", statusPolicy("s", "ERROR"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: heads, cost: tt.cost, classOf: func(rng *rand.Rand, tr *sampling.Trace) string {
				if rng.IntN(10) == 0 {
					tr.StatusMask = sampling.StatusErrorBit
					return "errors"
				}
				return "rest"
			}}
			if tt.name == "probabilistic with hash_salt" {
				r.heads = nil // a salt applies to traces without sampling values
			}
			res := r.run(t, newEngine(t, notPolicy("not", tt.sub)), 203)
			res.classes["rest"].check(t, "rest")
			if tt.name != "status_code" {
				res.classes["errors"].check(t, "errors")
			}
		})
	}
}

// TestCountsOTTLCondition: ottl_condition keeps every trace with a
// matching span, with the head sampler's probability: the matching traces
// add up.
func TestCountsOTTLCondition(t *testing.T) {
	gold := traceOf(traceID(1), spanSpec{attrs: map[string]any{"tier": "gold"}, endMs: 5})
	other := traceOf(traceID(1), spanSpec{attrs: map[string]any{"tier": "silver"}, endMs: 5})
	e := newEngine(t, ottlPolicy("gold", []string{`attributes["tier"] == "gold"`}, nil))
	r := countRun{n: 60_000, perSec: 5000, heads: []string{"ot=th:8", "ot=th:c", ""}, classOf: func(rng *rand.Rand, tr *sampling.Trace) string {
		tr.HasSpans = true
		if rng.IntN(5) == 0 {
			tr.Spans = gold
			return "gold"
		}
		tr.Spans = other
		return "other"
	}}
	res := r.run(t, e, 205)
	res.classes["gold"].check(t, "gold")
	assert.Zero(t, res.classes["other"].kept)
}

// TestCountsRescue: traces decided by a 10 % baseline and an errors rule,
// a fifth of them gaining a late error span after the first decision. The
// first decision's kept traces carry its threshold; a trace it dropped and
// a later decision (Redecide) keeps is a supplement (adjusted count 0).
// Counted so, the traces add up; counted with the rescue decision's
// threshold (p = 1), they come out high by the rescued traces.
func TestCountsRescue(t *testing.T) {
	e := newEngine(t, statusPolicy("errors", "ERROR"), probPolicy("baseline", 10))
	rng := rand.New(rand.NewPCG(207, 208))
	var first, naive estimate
	rescued := 0
	var tr sampling.Trace
	for i := range statTraces / 2 {
		statTrace(&tr, rng, int64(i)*sec/5000)
		d := e.Decide(&tr)
		first.add(d)
		lateError := rng.IntN(5) == 0
		switch {
		case d.Keep() || !lateError:
			naive.add(d)
		default:
			tr.SpanCount++
			tr.StatusMask |= sampling.StatusErrorBit
			d2 := e.Redecide(&tr)
			require.True(t, d2.Keep(), "the late error keeps the trace")
			rescued++
			// Its spans go out with a supplement marker: they count 0.
			m := sampling.NewSupplementMarker(sampling.SupplementRescue)
			require.Zero(t, sampling.AdjustedCount(m.Mark([]byte(e.Marker(&tr, d2).Mark(nil)))))
			naive.add(d2)
		}
	}
	t.Logf("rescued %d traces", rescued)
	first.check(t, "supplements count 0")
	sigma := math.Sqrt(naive.variance)
	t.Logf("counted at the rescue's threshold: adjusted %.0f of %d (%+.1fσ)", naive.adjusted, naive.truth, (naive.adjusted-float64(naive.truth))/sigma)
	assert.Greater(t, naive.adjusted-float64(naive.truth), 4*sigma, "counting rescues at their own threshold overcounts")
}

// TestCountsRoundTrip: the threshold a kept trace carries reads back from
// the marked tracestate as the adjusted count the tests sum.
func TestCountsRoundTrip(t *testing.T) {
	e := newEngine(t, notPolicy("not", probPolicy("p", 30)))
	rng := rand.New(rand.NewPCG(209, 210))
	checked := 0
	for range 1000 {
		tr := traceWith(randomID(rng), "ot=th:8")
		if !tr.HeadThreshold.ShouldSample(tr.Randomness) {
			continue
		}
		d := e.Decide(tr)
		if !d.Keep() {
			continue
		}
		state := e.Marker(tr, d).Mark([]byte("ot=th:8"))
		assert.InEpsilon(t, 1/d.Threshold.Probability(), sampling.AdjustedCount(state), 1e-9)
		var back sampling.Trace
		back.SetIdentity(tr.ID, []byte(state))
		assert.True(t, back.HeadThreshold.ShouldSample(back.Randomness), "marked th and rv are consistent: %s", state)
		assert.InDelta(t, 1/(0.5*0.7), 1/d.Threshold.Probability(), 1e-6, "kept with p = 1/2 × 70 %")
		checked++
	}
	require.Positive(t, checked)
}

// TestCountsComposite: composite over a 50 % sampler (40 % of the budget)
// and always_sample, at about a tenth of the demand. Consistent (the
// default): the counts add up and the total holds, burst and deficit
// included; strict (contrib's per-second counts) counts low.
func TestCountsComposite(t *testing.T) {
	const total = 2000
	cfg := func(mode sampling.LimitMode) sampling.PolicyConfig {
		return sampling.NewPolicyConfig("composite", "composite", &sampling.CompositeConfig{
			MaxTotalSpansPerSecond: total, Mode: mode,
			SubPolicies:    []sampling.PolicyConfig{probPolicy("half", 50), sampling.NewPolicyConfig("rest", "always_sample", nil)},
			RateAllocation: []sampling.RateAllocationConfig{{Policy: "half", Percent: 40}, {Policy: "rest", Percent: 60}},
		})
	}
	r := countRun{n: 300_000, perSec: 5000, heads: []string{"ot=th:8", ""}, cost: spans1to8}
	res := r.run(t, newEngine(t, cfg(sampling.LimitConsistent)), 211)
	res.classes["all"].check(t, "all")
	t.Logf("kept %.0f spans per second for a total of %d", res.keptSpans/res.secs, total)
	assert.LessOrEqual(t, res.keptSpans, total*res.secs+2*total, "the total holds, burst and deficit included")
	assert.GreaterOrEqual(t, res.keptSpans, total*res.secs-total, "the total is used")

	strict := r.run(t, newEngine(t, cfg(sampling.LimitStrict)), 211).classes["all"]
	t.Logf("strict: adjusted %.0f of %d (%.3f)", strict.adjusted, strict.truth, strict.adjusted/float64(strict.truth))
	assert.Less(t, strict.adjusted, 0.5*float64(strict.truth), "strict counts come out low")
}

// okOrError makes a tenth of the traces errors: the classes "errors" and
// "ok" (statTrace's traces are OK).
func okOrError(rng *rand.Rand, tr *sampling.Trace) string {
	if rng.IntN(10) == 0 {
		tr.StatusMask = sampling.StatusErrorBit
		return "errors"
	}
	return "ok"
}

// checkRatio is estimate.check, with the ratio of the adjusted count to
// the truth logged (what the audit of 2026-12-06 measured).
func checkRatio(t *testing.T, e *estimate, group string) {
	t.Helper()
	t.Logf("%s: adjusted/true = %.3f", group, e.adjusted/float64(e.truth))
	e.check(t, group)
}

// TestCountsDrop: drop over a sampler ("drop 90 % of the OK traces") lets
// through the traces its sampler refuses, with the probability of
// surviving it; a policy keeping them must mark them with that probability
// (times its own on the same randomness). Marked as the keeping policy
// alone marks them, the OK traces counted 0.10 of the truth under
// always_sample (audit of 2026-12-06).
func TestCountsDrop(t *testing.T) {
	always := sampling.NewPolicyConfig("all", "always_sample", nil)
	tests := []struct {
		name     string
		policies []sampling.PolicyConfig
	}{
		{"always_sample", []sampling.PolicyConfig{dropPolicy("drop", statusPolicy("ok", "OK"), probPolicy("p", 90)), always}},
		// Survivors R < th(50 %), kept R ≥ th(80 %): an interval of R.
		{"probabilistic keeper", []sampling.PolicyConfig{dropPolicy("drop", statusPolicy("ok", "OK"), probPolicy("p", 50)), statusPolicy("errors", "ERROR"), probPolicy("keep", 80)}},
		// Survivors R ≥ th(30 %) (drop over not), kept R ≥ th(60 %).
		{"drop over not", []sampling.PolicyConfig{dropPolicy("drop", statusPolicy("ok", "OK"), notPolicy("n", probPolicy("p", 30))), statusPolicy("errors", "ERROR"), probPolicy("keep", 60)}},
		{"two samplers", []sampling.PolicyConfig{dropPolicy("drop", probPolicy("p90", 90), statusPolicy("ok", "OK"), probPolicy("p50", 50)), always}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: []string{"ot=th:8", "ot=th:c", ""}, classOf: okOrError}
			res := r.run(t, newEngine(t, tt.policies...), 213)
			checkRatio(t, res.classes["ok"], "ok")
			checkRatio(t, res.classes["errors"], "errors")
		})
	}
}

// TestCountsUnion: top-level policies sampling on different randomness (a
// not over a sampler, a hash_salt) keep the union of their sets, whose
// probability is not any one policy's. Marked with the most permissive
// threshold, [probabilistic 50, not(probabilistic 50)] counted 2.0 times
// the truth and [probabilistic 10 with hash_salt, probabilistic 10] 1.88
// times (audit of 2026-12-06).
func TestCountsUnion(t *testing.T) {
	salted := func(pct float64, salt string) sampling.PolicyConfig {
		return sampling.NewPolicyConfig("salted-"+salt, "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: pct, HashSalt: salt})
	}
	heads := []string{"ot=th:8", "ot=th:c", ""}
	tests := []struct {
		name     string
		policies []sampling.PolicyConfig
		heads    []string
	}{
		{"p50 or not p50", []sampling.PolicyConfig{probPolicy("p", 50), notPolicy("n", probPolicy("q", 50))}, heads},
		{"p30 or not p50", []sampling.PolicyConfig{probPolicy("p", 30), notPolicy("n", probPolicy("q", 50))}, heads},
		{"salted p10 or p10", []sampling.PolicyConfig{salted(10, "s"), probPolicy("p", 10)}, nil},
		{"two salts, not, errors", []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), salted(10, "a"), salted(20, "b"), notPolicy("n", probPolicy("q", 95))}, nil},
		// With a head threshold a salt does not apply: one randomness.
		{"salted p10 or not p50, head-sampled", []sampling.PolicyConfig{salted(10, "s"), notPolicy("n", probPolicy("q", 50))}, []string{"ot=th:8", "ot=th:c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: tt.heads, classOf: okOrError}
			res := r.run(t, newEngine(t, tt.policies...), 215)
			checkRatio(t, res.classes["ok"], "ok")
			checkRatio(t, res.classes["errors"], "errors")
		})
	}
	// A budget thins the kept traces on the randomness they are marked
	// with: on the derived one, uniform above the union's threshold, the
	// counts still add up (the most permissive sampler's randomness is not
	// uniform there). One class here; classes that split the union are
	// TestCountsBudgetClasses' (counts_budget_test.go).
	t.Run("budget over a union", func(t *testing.T) {
		cfgs := []sampling.PolicyConfig{probPolicy("p", 30), notPolicy("n", probPolicy("q", 50)), salted(10, "s")}
		require.NoError(t, sampling.ValidatePolicies(cfgs))
		e, err := sampling.NewEngine(cfgs, sampling.WithBudget(sampling.BudgetConfig{
			TracesPerSecond: 1000, DropErrors: true,
			Classes: []sampling.BudgetClass{{Name: "all", Policies: []string{"p", "n", "salted-s"}}},
		}))
		require.NoError(t, err)
		r := countRun{n: 300_000, perSec: 5000, classOf: okOrError}
		res := r.run(t, e, 217)
		checkRatio(t, res.classes["ok"], "ok")
		checkRatio(t, res.classes["errors"], "errors")
		kept := res.classes["ok"].kept + res.classes["errors"].kept
		t.Logf("kept %.0f traces per second for a budget of 1000", float64(kept)/res.secs)
		assert.Less(t, float64(kept)/res.secs, 1500.0, "the budget thins")
	})
}
