package sampling_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// TestCountsUnionAnd: a top-level and that refuses a trace on randomness
// (an OK trace with R below its sampler's threshold) beside another policy
// that samples on randomness. The engine can only measure the union of the
// policies' sets if the and states its set when it refuses too: before, it
// answered unknownRV, the engine marked the most permissive threshold of
// the policies that sampled, and [and(OK, probabilistic 50),
// not(probabilistic 50)] counted the OK traces twice.
func TestCountsUnionAnd(t *testing.T) {
	heads := []string{"ot=th:8", "ot=th:c", ""}
	tests := []struct {
		name     string
		policies []sampling.PolicyConfig
		heads    []string
	}{
		{"and(OK, p50) or not p50", []sampling.PolicyConfig{andPolicy("a", statusPolicy("ok", "OK"), probPolicy("p", 50)), notPolicy("n", probPolicy("q", 50))}, heads},
		// The sampler refuses first: the filter after it is asked as
		// Redecide asks it.
		{"and(p30, OK) or not p50", []sampling.PolicyConfig{andPolicy("a", probPolicy("p", 30), statusPolicy("ok", "OK")), notPolicy("n", probPolicy("q", 50))}, heads},
		// Two samplers on one randomness inside the and: its set is the
		// strictest one's.
		{"and(p60, OK, p30) or p50", []sampling.PolicyConfig{andPolicy("a", probPolicy("p60", 60), statusPolicy("ok", "OK"), probPolicy("p30", 30)), probPolicy("q", 50)}, heads},
		// On independent randomness: the union is 1 − 0.7·0.5.
		{"and(OK, p30) or salted p50", []sampling.PolicyConfig{andPolicy("a", statusPolicy("ok", "OK"), probPolicy("p", 30)), saltedPolicy("s", "s", 50)}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: tt.heads, classOf: okOrError}
			res := r.run(t, newEngine(t, tt.policies...), 401+uint64(i))
			checkRatio(t, res.classes["ok"], "ok")
			checkRatio(t, res.classes["errors"], "errors")
		})
	}
	// A budget whose classes split the union: the and's part is measured
	// only if its set is known.
	t.Run("budget, a class each", func(t *testing.T) {
		cfgs := []sampling.PolicyConfig{andPolicy("a", statusPolicy("ok", "OK"), probPolicy("p", 30)), notPolicy("n", probPolicy("q", 50))}
		require.NoError(t, sampling.ValidatePolicies(cfgs))
		e, err := sampling.NewEngine(cfgs, sampling.WithBudget(sampling.BudgetConfig{
			TracesPerSecond: 1000, DropErrors: true,
			Classes: []sampling.BudgetClass{{Name: "a", Policies: []string{"a"}}, {Name: "n", Policies: []string{"n"}}},
		}))
		require.NoError(t, err)
		r := countRun{n: 300_000, perSec: 5000, heads: heads, classOf: okOrError}
		res := r.run(t, e, 411)
		checkRatio(t, res.classes["ok"], "ok")
		checkRatio(t, res.classes["errors"], "errors")
		kept := res.classes["ok"].kept + res.classes["errors"].kept
		t.Logf("kept %.0f traces per second for a budget of 1000", float64(kept)/res.secs)
	})
}

// TestCountsAndMixed: an and over samplers on different randomness keeps
// the intersection of their sets: on a randomness and its reflection an
// interval of R ([p70, not(p50)]: R between the two thresholds, 20 %), on
// independent salts a product (salted p50 and p40: 20 %). Marked with the
// strictest threshold (50 %, 40 %), the kept traces counted 0.4 and 0.5 of
// the truth.
func TestCountsAndMixed(t *testing.T) {
	heads := []string{"ot=th:8", "ot=th:c", ""}
	tests := []struct {
		name     string
		policies []sampling.PolicyConfig
		heads    []string
	}{
		{"and(p70, not p50)", []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), andPolicy("a", probPolicy("p", 70), notPolicy("n", probPolicy("q", 50)))}, heads},
		{"and(salted p50, p40)", []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), andPolicy("a", saltedPolicy("s", "s", 50), probPolicy("p", 40))}, nil},
		{"and(OK, salted p50, not p40, salted p80)", []sampling.PolicyConfig{andPolicy("a", statusPolicy("ok", "OK"), saltedPolicy("s", "s", 50), notPolicy("n", probPolicy("q", 40)), saltedPolicy("u", "u", 80))}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: tt.heads, classOf: okOrError}
			res := r.run(t, newEngine(t, tt.policies...), 421+uint64(i))
			checkRatio(t, res.classes["ok"], "ok")
			if tt.name != "and(OK, salted p50, not p40, salted p80)" {
				checkRatio(t, res.classes["errors"], "errors")
			}
		})
	}
}

// TestCountsCompositeUnion: a composite (mode consistent) whose kept set is
// not one threshold's (sub-policies on independent salts, or on a
// randomness and its reflection) beside another top-level policy that
// samples on randomness. The composite decided on its own derived
// randomness R*, which is not independent of the other policy's sets, and
// the engine marked the most permissive threshold of the policies that
// sampled. Handed to the engine as its sets on the trace's randomness
// values instead, the union of all the policies is measured exactly.
func TestCountsCompositeUnion(t *testing.T) {
	const loose, binding = 1_000_000, 2000
	tests := []struct {
		name     string
		policies []sampling.PolicyConfig
		heads    []string
	}{
		{"composite(salted p10, p20), salted p30", []sampling.PolicyConfig{
			consistentComposite("composite", loose, nil, saltedPolicy("s", "s", 10), probPolicy("p", 20)), saltedPolicy("t", "t", 30)}, nil},
		{"composite(salted p10, p20), not p50", []sampling.PolicyConfig{
			consistentComposite("composite", loose, nil, saltedPolicy("s", "s", 10), probPolicy("p", 20)), notPolicy("n", probPolicy("q", 50))}, nil},
		// The total binds: the composite's sets are thinned.
		{"composite(salted p10, p20, errors), total 2000, not p50", []sampling.PolicyConfig{
			consistentComposite("composite", binding, nil, saltedPolicy("s", "s", 10), probPolicy("p", 20), statusPolicy("errors", "ERROR")), notPolicy("n", probPolicy("q", 50))}, nil},
		// On a randomness and its reflection, heads included.
		{"composite(not p30, p20), p50", []sampling.PolicyConfig{
			consistentComposite("composite", loose, nil, andPolicy("not30", notPolicy("n", probPolicy("q", 30))), probPolicy("p", 20)), probPolicy("r", 50)}, []string{"ot=th:8", "ot=th:c", ""}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := countRun{n: 300_000, perSec: 5000, heads: tt.heads, cost: spans1to8, classOf: okOrError}
			res := r.run(t, newEngine(t, tt.policies...), 431+uint64(i))
			checkRatio(t, res.classes["ok"], "ok")
			checkRatio(t, res.classes["errors"], "errors")
			t.Logf("kept %.0f spans per second", res.keptSpans/res.secs)
		})
	}
}
