package sampling_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// consistentComposite is a composite in mode consistent (the default).
func consistentComposite(name string, total int64, alloc []sampling.RateAllocationConfig, subs ...sampling.PolicyConfig) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "composite", &sampling.CompositeConfig{
		MaxTotalSpansPerSecond: total, SubPolicies: subs, RateAllocation: alloc, Mode: sampling.LimitConsistent,
	})
}

// TestCountsCompositeSamplers: composite (mode consistent) over
// sub-policies that sample on randomness. The composite's probability of
// keeping a trace must not depend on the trace's randomness, refused or
// kept, for 1/p to count it: before, only the sub-policies that kept the
// trace offered, so over two probabilistic 50 every kept trace was marked
// p = 1 and counted 0.50 of the truth; over status_code ERROR and
// probabilistic 10 with a binding total, 0.90 (audit of 2026-12-06).
//
// Demand: 5000 traces/s of 1 to 8 spans, about 22 500 spans/s, a tenth
// of them errors; heads at ½ and ¼ let through 58 % of it (37.5 % without
// the unsampled third). "loose" totals (10^6 spans/s) bind nothing; under
// a total of 2000 spans/s the kept spans must stay within the total plus
// the burst spent once and the deficit (r·t + 2B), and, where the
// sub-policies' sets offer more than the total ("binding"), use it (at
// least r·t − B).
func TestCountsCompositeSamplers(t *testing.T) {
	heads := []string{"ot=th:8", "ot=th:c", ""}
	all := func(pct int64, names ...string) []sampling.RateAllocationConfig {
		var out []sampling.RateAllocationConfig
		for _, n := range names {
			out = append(out, sampling.RateAllocationConfig{Policy: n, Percent: pct})
		}
		return out
	}
	const loose, binding = 1_000_000, 2000
	tests := []struct {
		name  string
		total int64
		alloc []sampling.RateAllocationConfig
		subs  []sampling.PolicyConfig
		heads []string
		used  bool // the sets offer more than the total: it is used
	}{
		{"two p50", loose, nil, []sampling.PolicyConfig{probPolicy("a", 50), probPolicy("b", 50)}, heads, false},
		{"two p50, binding", binding, nil, []sampling.PolicyConfig{probPolicy("a", 50), probPolicy("b", 50)}, heads, true},
		{"errors and p10", loose, nil, []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), probPolicy("rest", 10)}, heads, false},
		// Each allocation is the whole total: only the total binds.
		{"errors and p10, binding total", binding, all(100, "errors", "rest"), []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), probPolicy("rest", 10)}, heads, true},
		// errors' allocation (200 spans/s of 1300) binds, p10's (1800)
		// does not: for an error trace p10's offer was a large part of
		// the sum.
		{"errors 10 % and p10 90 % of 2000", binding, []sampling.RateAllocationConfig{{Policy: "errors", Percent: 10}, {Policy: "rest", Percent: 90}},
			[]sampling.PolicyConfig{statusPolicy("errors", "ERROR"), probPolicy("rest", 10)}, heads, false},
		// A salt applies to traces without sampling values: no heads.
		{"salted p10 beside p20", loose, nil, []sampling.PolicyConfig{saltedPolicy("salted", "s", 10), probPolicy("p", 20)}, nil, false},
		{"salted p10 beside p20, binding", binding, nil, []sampling.PolicyConfig{saltedPolicy("salted", "s", 10), probPolicy("p", 20)}, nil, true},
		// With a head threshold, the salt does not apply: one randomness,
		// p10's set within p20's, which then keeps at most its own 20 %
		// (1690 spans/s): the total is not used up.
		{"salted p10 beside p20, head-sampled", binding, nil, []sampling.PolicyConfig{saltedPolicy("salted", "s", 10), probPolicy("p", 20)}, []string{"ot=th:8", "ot=th:c"}, false},
		// not is a composite sub-policy through and.
		{"not p30 beside p20", loose, nil, []sampling.PolicyConfig{andPolicy("not30", notPolicy("n", probPolicy("q", 30))), probPolicy("p", 20)}, heads, false},
		// and's refusal on randomness states its set for the composite.
		{"and(OK, p30) beside p20", loose, nil, []sampling.PolicyConfig{andPolicy("ok30", statusPolicy("ok", "OK"), probPolicy("q", 30)), probPolicy("p", 20)}, heads, false},
		{"not p30 beside errors, binding", binding, nil, []sampling.PolicyConfig{andPolicy("not30", notPolicy("n", probPolicy("q", 30))), statusPolicy("errors", "ERROR")}, heads, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: tt.heads, cost: spans1to8, classOf: okOrError}
			res := r.run(t, newEngine(t, consistentComposite("composite", tt.total, tt.alloc, tt.subs...)), 301+uint64(i))
			checkRatio(t, res.classes["ok"], "ok")
			checkRatio(t, res.classes["errors"], "errors")
			t.Logf("kept %.0f spans per second for a total of %d", res.keptSpans/res.secs, tt.total)
			if tt.total == binding {
				assert.LessOrEqual(t, res.keptSpans, binding*res.secs+2*binding, "the total holds, burst and deficit included")
			}
			if tt.used {
				assert.GreaterOrEqual(t, res.keptSpans, binding*res.secs-binding, "the total is used")
			}
		})
	}
}

// TestCountsCompositeBeside: a composite over a sampler beside a top-level
// not over a sampler on the same randomness: the engine unites their sets
// (keepSet), which it can only do if the composite states its set when it
// refuses too. Before, a composite that refused answered as a
// deterministic refusal, and the traces were counted twice (2.0 of the
// truth).
func TestCountsCompositeBeside(t *testing.T) {
	r := countRun{n: 300_000, perSec: 5000, heads: []string{"ot=th:8", "ot=th:c", ""}, cost: spans1to8, classOf: okOrError}
	e := newEngine(t,
		consistentComposite("composite", 1_000_000, nil, statusPolicy("errors", "ERROR"), probPolicy("p", 50)),
		notPolicy("n", probPolicy("q", 50)))
	res := r.run(t, e, 331)
	checkRatio(t, res.classes["ok"], "ok")
	checkRatio(t, res.classes["errors"], "errors")
}

// TestCompositeSamplersRates: the rates behave as contrib's composite.
// Two probabilistic 50 under totals that bind nothing keep half the
// traces, as contrib does (its first sub-policy keeps them, the second
// refuses the rest), not all of them. Under binding allocations each
// allocation is spent: errors (40 % of 2000 spans/s, 800) and
// probabilistic 50 (60 %, 1200) keep 2000 spans/s in all, the errors
// class getting errors' 800 plus the tenth of probabilistic 50's 1200
// that errors are of its demand: 920.
func TestCompositeSamplersRates(t *testing.T) {
	t.Run("two p50 keep half", func(t *testing.T) {
		r := countRun{n: 300_000, perSec: 5000, cost: spans1to8}
		res := r.run(t, newEngine(t, consistentComposite("composite", 1_000_000, nil, probPolicy("a", 50), probPolicy("b", 50))), 341)
		all := res.classes["all"]
		frac := float64(all.kept) / float64(all.truth)
		t.Logf("kept %.4f of the traces", frac)
		assert.InDelta(t, 0.5, frac, 4*math.Sqrt(0.25/float64(all.truth)), "half the traces, as contrib")
		checkRatio(t, all, "all")
	})
	t.Run("each allocation spent", func(t *testing.T) {
		e := newEngine(t, consistentComposite("composite", 2000,
			[]sampling.RateAllocationConfig{{Policy: "errors", Percent: 40}, {Policy: "half", Percent: 60}},
			statusPolicy("errors", "ERROR"), probPolicy("half", 50)))
		const n, perSec = 300_000, 5000
		rng := rand.New(rand.NewPCG(343, 344))
		classes := map[string]*estimate{"ok": {}, "errors": {}}
		var tr sampling.Trace
		var kept, errSpans float64
		for i := range n {
			statTrace(&tr, rng, int64(i)*sec/perSec)
			spans1to8(rng, &tr)
			class := okOrError(rng, &tr)
			d := e.Decide(&tr)
			classes[class].add(d)
			if d.Keep() {
				kept += float64(tr.SpanCount)
				if class == "errors" {
					errSpans += float64(tr.SpanCount)
				}
			}
		}
		checkRatio(t, classes["ok"], "ok")
		checkRatio(t, classes["errors"], "errors")
		secs := float64(n) / perSec
		t.Logf("kept %.0f spans per second, %.0f of errors", kept/secs, errSpans/secs)
		assert.InDelta(t, 2000, kept/secs, 100, "both allocations are spent")
		assert.InDelta(t, 920, errSpans/secs, 60, "errors' 800 and a tenth of half's 1200")
	})
}

// TestCountsCompositeBudget: a budget thins a composite's kept traces on
// the randomness they are marked with, the derived one (R*) when the
// composite's sets are on independent randomness: the counts still add up.
func TestCountsCompositeBudget(t *testing.T) {
	cfgs := []sampling.PolicyConfig{consistentComposite("composite", 1_000_000, nil, saltedPolicy("salted", "s", 10), probPolicy("p", 20), statusPolicy("errors", "ERROR"))}
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	e, err := sampling.NewEngine(cfgs, sampling.WithBudget(sampling.BudgetConfig{TracesPerSecond: 500, DropErrors: true}))
	require.NoError(t, err)
	r := countRun{n: 300_000, perSec: 5000, cost: spans1to8, classOf: okOrError}
	res := r.run(t, e, 351)
	checkRatio(t, res.classes["ok"], "ok")
	checkRatio(t, res.classes["errors"], "errors")
	kept := res.classes["ok"].kept + res.classes["errors"].kept
	t.Logf("kept %.0f traces per second for a budget of 500", float64(kept)/res.secs)
	assert.Less(t, float64(kept)/res.secs, 750.0, "the budget thins")
}
