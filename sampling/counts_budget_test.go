package sampling_test

import (
	"math/rand/v2"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// overlapping are three policies whose sets of randomness values overlap
// and are on different randomness: p keeps R ≥ th(30 %), n the traces with
// R below th(50 %) (on the reflected randomness), salted-s 10 % on a
// salted one. Their union keeps 82 % of the traces without a head: 80 % of
// R (the top 30 % and the bottom 50 %) and a tenth of the other 20 %.
func overlapping() []sampling.PolicyConfig {
	return []sampling.PolicyConfig{
		probPolicy("p", 30),
		notPolicy("n", probPolicy("q", 50)),
		sampling.NewPolicyConfig("salted-s", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 10, HashSalt: "s"}),
	}
}

func budgetOver(t *testing.T, cfgs []sampling.PolicyConfig, b sampling.BudgetConfig, opts ...sampling.Option) *sampling.Engine {
	t.Helper()
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	require.NoError(t, sampling.ValidateBudget(&b, cfgs))
	e, err := sampling.NewEngine(cfgs, append(opts, sampling.WithBudget(b))...)
	require.NoError(t, err)
	return e
}

// TestCountsBudgetClasses: a budget whose classes split policies that
// overlap on randomness. A trace's class is the highest-priority class of
// the policies that keep it, which depends on its randomness where their
// sets overlap; the budget must still keep each trace with the probability
// its threshold says. Thinning each class's traces at q·p_c on the
// randomness the union marks (which is not uniform within a class), the
// counts came to 0.06 of the truth over the overlapping policies with one
// class each and a budget of 1000/s (193/s kept), 1.24 with 2000/s (2248/s
// kept), 0.92 with the classes out of policy order, 0.31 with
// always_sample below a 30 % sampler.
//
// It also checks that the budget does its job: the classes' demand is what
// each would keep first in priority order, they are served in that order
// (ClassProbabilities), and the kept rate is near the budget's.
func TestCountsBudgetClasses(t *testing.T) {
	always := sampling.NewPolicyConfig("all", "always_sample", nil)
	tests := []struct {
		name     string
		policies []sampling.PolicyConfig
		budget   sampling.BudgetConfig
		heads    []string
		first    bool // sample_on_first_match
		// Per class in priority order: demand (traces/s at 5000/s
		// without a head) and probability the budget serves it with.
		demand, p []float64
	}{
		{
			// Demand: p 30 % (1500/s); n 50 % (2500/s), disjoint from
			// p's on R; salted-s what p and n leave, 10 % of 20 %
			// (100/s). 2000/s: p whole, n 500 of 2500, salted-s none.
			name:     "default classes",
			policies: overlapping(),
			budget:   sampling.BudgetConfig{TracesPerSecond: 2000, DropErrors: true},
			demand:   []float64{1500, 2500, 100}, p: []float64{1, 0.2, 0},
		},
		{
			// The figure of the audit: 1000/s, p gets 1000 of 1500.
			name:     "default classes, p thinned",
			policies: overlapping(),
			budget:   sampling.BudgetConfig{TracesPerSecond: 1000, DropErrors: true},
			demand:   []float64{1500, 2500, 100}, p: []float64{1000.0 / 1500, 0, 0},
		},
		{
			// The same with heads at ½ and ¼ (the salt does not apply
			// to them): the demand is lower, the classes' shares move.
			name:     "default classes, head-sampled",
			policies: overlapping(),
			budget:   sampling.BudgetConfig{TracesPerSecond: 1000, DropErrors: true},
			heads:    []string{"ot=th:8", "ot=th:c", ""},
		},
		{
			// Classes out of policy order: salted-s first (10 %, 500/s,
			// served whole), then p and n, what salted-s leaves of their
			// 80 % (3600/s), 500 of it.
			name:     "explicit classes out of policy order",
			policies: overlapping(),
			budget: sampling.BudgetConfig{TracesPerSecond: 1000, DropErrors: true, Classes: []sampling.BudgetClass{
				{Name: "salted", Policies: []string{"salted-s"}},
				{Name: "rest", Policies: []string{"p", "n"}},
			}},
			demand: []float64{500, 3600}, p: []float64{1, 500.0 / 3600},
		},
		{
			// A class that keeps every trace below one that samples 30 %:
			// the 70 % p leaves (3500/s) get 500/s.
			name:     "always_sample below a sampler",
			policies: []sampling.PolicyConfig{probPolicy("p", 30), always},
			budget:   sampling.BudgetConfig{TracesPerSecond: 2000, DropErrors: true},
			demand:   []float64{1500, 3500}, p: []float64{1, 500.0 / 3500},
		},
		{
			// A drop lets through the OK traces with R below th(50 %);
			// keep takes R ≥ th(80 %) of them (30 %), all the rest (20 %);
			// errors are not dropped (80 % and 20 %). With heads: 2917/s
			// reach the policies, keep's demand is 35 % of them, all's
			// 20 %. (all's p moves with keep's demand: not checked.)
			name: "drop survivors split between classes",
			policies: []sampling.PolicyConfig{
				dropPolicy("drop", statusPolicy("ok", "OK"), probPolicy("p", 50)), probPolicy("keep", 80), always,
			},
			budget: sampling.BudgetConfig{TracesPerSecond: 1500, DropErrors: true},
			heads:  []string{"ot=th:8", "ot=th:c", ""},
			demand: []float64{1021, 583}, p: []float64{1},
		},
		{
			// With sample_on_first_match the later policies' sets are
			// part of the kept set and of its split: as without it.
			name:     "default classes, sample_on_first_match",
			policies: overlapping(),
			budget:   sampling.BudgetConfig{TracesPerSecond: 2000, DropErrors: true},
			first:    true,
			demand:   []float64{1500, 2500, 100}, p: []float64{1, 0.2, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := budgetOver(t, tt.policies, tt.budget, sampling.WithFirstMatch(tt.first))
			r := countRun{n: 300_000, perSec: 5000, heads: tt.heads, classOf: okOrError}
			res := r.run(t, e, 219)
			checkRatio(t, res.classes["ok"], "ok")
			checkRatio(t, res.classes["errors"], "errors")

			kept := float64(res.classes["ok"].kept+res.classes["errors"].kept) / res.secs
			t.Logf("kept %.0f traces per second for a budget of %.0f", kept, tt.budget.TracesPerSecond)
			assert.InEpsilon(t, tt.budget.TracesPerSecond, kept, 0.08, "the kept rate is the budget's")
			cps := e.ClassProbabilities(nil)
			for _, c := range cps {
				t.Logf("class %-8s demand %7.1f/s  p %.4f", c.Name, c.Demand, c.Probability)
			}
			for i := range tt.demand {
				// The demand is an average over about 4 s: a class of
				// 100/s is within 20 of it.
				assert.InDelta(t, tt.demand[i], cps[i].Demand, max(0.06*tt.demand[i], 20), "demand of %s", cps[i].Name)
			}
			for i := range tt.p {
				assert.InDelta(t, tt.p[i], cps[i].Probability, 0.03, "probability of %s", cps[i].Name)
			}
		})
	}
}

// TestCountsBudgetNeverDrop: a never_drop class whose policy overlaps
// with those of a class after it keeps every trace its policy keeps, over
// the budget, and the counts add up.
func TestCountsBudgetNeverDrop(t *testing.T) {
	e := budgetOver(t, overlapping(), sampling.BudgetConfig{TracesPerSecond: 1000, DropErrors: true, Classes: []sampling.BudgetClass{
		{Name: "n", Policies: []string{"n"}, NeverDrop: true},
		{Name: "rest", Policies: []string{"p", "salted-s"}},
	}})
	half, err := otelsampling.ProbabilityToThreshold(0.5)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(221, 222))
	var all estimate
	inN, keptInN := 0, 0
	var tr sampling.Trace
	for i := range 300_000 {
		statTrace(&tr, rng, int64(i)*sec/5000)
		d := e.Decide(&tr)
		all.add(d)
		if !tr.ShouldSample(half) { // n keeps it
			inN++
			if d.Keep() {
				keptInN++
			}
		}
	}
	checkRatio(t, &all, "all")
	assert.Equal(t, inN, keptInN, "every trace of the never_drop class is kept")
	cps := e.ClassProbabilities(nil)
	assert.InDelta(t, 1, cps[0].Probability, 0)
	assert.InEpsilon(t, 2500, cps[0].Demand, 0.05, "n's demand: half the traces")
	assert.Less(t, cps[1].Probability, 0.01, "n takes the whole budget")
}
