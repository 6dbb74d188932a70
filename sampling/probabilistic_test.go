package sampling_test

import (
	"hash/fnv"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/tailsift/tailsift/sampling"
)

func saltedPolicy(name, salt string, pct float64) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: pct, HashSalt: salt})
}

// TestProbabilisticHashSaltLoads: a contrib configuration with hash_salt
// loads (it was refused as an unknown key).
func TestProbabilisticHashSaltLoads(t *testing.T) {
	cfg, err := load(t, `
policies:
  - name: sample
    type: probabilistic
    probabilistic: {hash_salt: my-salt, sampling_percentage: 1}
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, &sampling.ProbabilisticConfig{SamplingPercentage: 1, HashSalt: "my-salt"}, cfg.Policies[0].Settings())
}

// contribKeeps is contrib v0.161.0's probabilistic decision without its
// usetracestate gate: FNV-1a of the salt and the trace ID, at most
// ratio·MaxUint64 (calculateThreshold and hashTraceID, transcribed).
func contribKeeps(salt string, id [16]byte, pct float64) bool {
	boundary := new(big.Float).SetInt(new(big.Int).SetUint64(math.MaxUint64))
	threshold, _ := boundary.Mul(boundary, big.NewFloat(pct/100)).Uint64()
	h := fnv.New64a()
	_, _ = h.Write([]byte(salt))
	_, _ = h.Write(id[:])
	return h.Sum64() <= threshold
}

// TestProbabilisticHashSalt: with a salt, the decision is a function of the
// salt and the trace ID: two engines (two collectors) with the same salt
// decide every trace alike, and alike with contrib given that salt; other
// salts, and the trace ID's own randomness, sample independently; the kept
// fraction is the percentage.
func TestProbabilisticHashSalt(t *testing.T) {
	const n = 40000
	rng := rand.New(rand.NewPCG(31, 32))
	a := newEngine(t, saltedPolicy("p", "salt-a", 25))
	a2 := newEngine(t, saltedPolicy("p", "salt-a", 25)) // another collector
	b := newEngine(t, saltedPolicy("p", "salt-b", 25))
	plain := newEngine(t, probPolicy("p", 25))

	var keptA, keptAB, keptAPlain, contribDiffers int
	for range n {
		id := randomID(rng)
		dA := a.Decide(traceWith(id, ""))
		require.Equal(t, dA.Keep(), a2.Decide(traceWith(id, "")).Keep(), "same salt, same decision")
		if dA.Keep() != contribKeeps("salt-a", id, 25) {
			contribDiffers++
		}
		if !dA.Keep() {
			continue
		}
		keptA++
		if b.Decide(traceWith(id, "")).Keep() {
			keptAB++
		}
		if plain.Decide(traceWith(id, "")).Keep() {
			keptAPlain++
		}
	}
	// Binomial bounds at 4.5 standard deviations.
	within := func(got int, p float64, trials int, msg string) {
		sd := math.Sqrt(p * (1 - p) * float64(trials))
		assert.InDelta(t, p*float64(trials), float64(got), 4.5*sd, msg)
	}
	within(keptA, 0.25, n, "kept fraction")
	within(keptAB, 0.25, keptA, "another salt keeps a quarter of what salt-a keeps")
	within(keptAPlain, 0.25, keptA, "the trace ID's randomness keeps a quarter of what salt-a keeps")
	assert.Zero(t, contribDiffers, "decisions that differ from contrib's with the same salt")
}

// TestProbabilisticHashSaltTracestate: a trace kept on a salted randomness
// carries it as rv next to th, so a consistent sampler downstream reads the
// randomness it was kept on and the probability it was kept with; a trace that
// arrived with sampling values keeps its own randomness, ignoring the salt.
func TestProbabilisticHashSaltTracestate(t *testing.T) {
	e := newEngine(t, saltedPolicy("p", "s", 10))
	downstream := newEngine(t, probPolicy("p", 50))
	sameRate := newEngine(t, probPolicy("p", 10))
	p10 := probTh(t, 0.1)
	rng := rand.New(rand.NewPCG(33, 34))
	kept := 0
	for range 5000 {
		id := randomID(rng)
		tr := traceWith(id, "vendor=x")
		d := e.Decide(tr)
		if !d.Keep() {
			continue
		}
		kept++
		rnd, ok := e.Randomness(tr, d)
		require.True(t, ok)
		assert.Equal(t, p10, d.Threshold)
		ts := e.Marker(tr, d).Mark([]byte("vendor=x"))
		w3c, err := otelsampling.NewW3CTraceState(ts)
		require.NoError(t, err, ts)
		ot := w3c.OTelValue()
		rv, ok := ot.RValueRandomness()
		require.True(t, ok, "rv in %q", ts)
		th, ok := ot.TValueThreshold()
		require.True(t, ok, "th in %q", ts)
		assert.Equal(t, rnd, rv, ts)
		assert.Equal(t, p10, th, ts)
		assert.Equal(t, "x", w3c.ExtraValues()[0].Value, "other vendors' values kept")
		// Downstream, the rv is the trace's randomness and th its head
		// threshold: a sampler there at 50 % decides on that rv, at
		// 5 % overall.
		down := traceWith(id, ts)
		assert.Equal(t, rnd, down.Randomness)
		assert.True(t, down.HasHead)
		assert.Equal(t, p10, down.HeadThreshold)
		assert.Equal(t, probTh(t, 0.05).ShouldSample(rnd), downstream.Decide(down).Keep(), ts)
	}
	require.Greater(t, kept, 300)

	// Sampling values arrived: the salt is not used.
	for range 2000 {
		id := randomID(rng)
		for _, ts := range []string{"ot=rv:" + randomRV(rng), "ot=th:0"} {
			tr := traceWith(id, ts)
			d := e.Decide(tr)
			assert.Equal(t, sameRate.Decide(traceWith(id, ts)).Keep(), d.Keep(), ts)
			_, ok := e.Randomness(tr, d)
			assert.False(t, ok, ts)
		}
	}
}

func randomRV(rng *rand.Rand) string {
	rnd, _ := otelsampling.UnsignedToRandomness(rng.Uint64() >> 8)
	return rnd.RValue()
}

// TestSaltedRandomnessOnlyWithTheDecidingThreshold: the engine carries the
// randomness of the policy whose threshold it keeps the trace with. A trace
// another policy keeps with probability 1 carries no rv; with the budget,
// the threshold q·p_c is decided on the salted randomness, which the kept
// trace carries.
func TestSaltedRandomnessOnlyWithTheDecidingThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	e := newEngine(t, statusPolicy("errors", "ERROR"), saltedPolicy("p", "s", 50))
	for range 200 {
		tr := traceWith(randomID(rng), "")
		tr.StatusMask = sampling.StatusErrorBit
		d := e.Decide(tr)
		require.True(t, d.Keep())
		_, ok := e.Randomness(tr, d)
		assert.False(t, ok)
		assert.Equal(t, "ot=th:0", e.Marker(tr, d).Mark(nil))
	}

	budgeted, err := sampling.NewEngine([]sampling.PolicyConfig{saltedPolicy("p", "s", 50)},
		sampling.WithBudget(sampling.BudgetConfig{TracesPerSecond: 10}))
	require.NoError(t, err)
	kept := 0
	for i := range 4000 {
		tr := traceWith(randomID(rng), "")
		tr.Now = t0 + int64(i)*sec/1000 // 1000 traces/s, 500 kept by p: the budget cuts
		d := budgeted.Decide(tr)
		if !d.Keep() {
			continue
		}
		kept++
		rnd, ok := budgeted.Randomness(tr, d)
		require.True(t, ok)
		assert.True(t, d.Threshold.ShouldSample(rnd), "th %s rv %s", d.Threshold.TValue(), rnd.RValue())
	}
	assert.Less(t, kept, 1000, "the budget cut (p alone keeps about 2000)")
	assert.Positive(t, kept)
}
