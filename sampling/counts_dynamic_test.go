package sampling_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// TestCountsFirstMatchDynamic: with sample_on_first_match, the policies
// after the one that samples are asked for their sets as Redecide asks
// them (no learning), and the kept trace is marked with the union's
// probability. dynamic must answer there as Decide would: a key it does
// not track gets, past the interval's allowance of new keys' first traces
// kept whole, the rarest key's probability. Answering "kept whole" for
// every untracked key, a key per trace (a request ID) behind
// probabilistic 50 made every trace that policy kept marked p = 1 while
// the others were kept at the rarest key's probability: the counts came to
// 0.50 of the truth.
func TestCountsFirstMatchDynamic(t *testing.T) {
	cfgs := []sampling.PolicyConfig{
		probPolicy("p", 50),
		dynPolicy("dyn", sampling.DynamicConfig{GoalTracesPerSecond: 10, AdjustmentInterval: time.Second}),
	}
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	e, err := sampling.NewEngine(cfgs, sampling.WithFirstMatch(true))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 99))
	var all estimate
	for j := range 60_000 {
		// A key per trace, 1000 traces/s.
		all.add(e.Decide(dynKeyed(rng, int64(j), int64(j)*sec/1000)))
	}
	checkRatio(t, &all, "all")
}
