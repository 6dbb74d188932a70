package sampling_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

func firstMatchEngine(t *testing.T, on bool, cfgs ...sampling.PolicyConfig) *sampling.Engine {
	t.Helper()
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	e, err := sampling.NewEngine(cfgs, sampling.WithFirstMatch(on))
	require.NoError(t, err)
	return e
}

// TestFirstMatchStopsCharging: with sample_on_first_match, an error trace
// kept by the errors rule does not charge the rate_limiting after it, so
// the next trace still finds its token; without, it does not.
func TestFirstMatchStopsCharging(t *testing.T) {
	for _, on := range []bool{false, true} {
		e := firstMatchEngine(t, on, statusPolicy("errors", "ERROR"), rateLimitingPolicy("rate", 1, 1))
		errTrace := &sampling.Trace{SpanCount: 1, Now: t0, StatusMask: sampling.StatusErrorBit}
		d := e.Decide(errTrace)
		require.True(t, d.Keep())
		assert.Equal(t, "errors", d.Policy)
		d = e.Decide(&sampling.Trace{SpanCount: 1, Now: t0, StatusMask: sampling.StatusOKBit})
		assert.Equal(t, on, d.Keep(), "first match %v: the limiter kept its token", on)
	}
}

// TestFirstMatchThreshold: the first sampler names the decision, but the
// trace carries the most permissive threshold of the policies after it, so
// that counts add up; contrib's first-match threshold (the first
// sampler's) would count the traces p50 keeps five times.
func TestFirstMatchThreshold(t *testing.T) {
	e := firstMatchEngine(t, true, probPolicy("p10", 10), probPolicy("p50", 50))
	rng := rand.New(rand.NewPCG(301, 302))
	var all estimate
	named := map[string]int{}
	var tr sampling.Trace
	for i := range statTraces / 4 {
		statTrace(&tr, rng, int64(i)*sec/5000)
		d := e.Decide(&tr)
		all.add(d)
		if d.Keep() {
			named[d.Policy]++
			assert.Equal(t, probTh(t, 0.5), d.Threshold)
		}
	}
	all.check(t, "all")
	assert.InEpsilon(t, 0.1/0.5, float64(named["p10"])/float64(all.kept), 0.05, "the first sampler names a fifth of the kept")
}
