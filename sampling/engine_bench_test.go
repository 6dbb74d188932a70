package sampling_test

import (
	"math/rand/v2"
	"testing"

	"github.com/tailsift/tailsift/sampling"
)

// BenchmarkEngineDecide measures one decision per op over a pool of varied
// traces (about a third error, random durations and randomness).
func BenchmarkEngineDecide(b *testing.B) {
	cases := []struct {
		name string
		cfgs []sampling.PolicyConfig
	}{
		{"status_code", []sampling.PolicyConfig{statusPolicy("errors", "ERROR")}},
		{"latency", []sampling.PolicyConfig{latencyPolicy("slow", 500, 0)}},
		{"probabilistic", []sampling.PolicyConfig{probPolicy("sample", 10)}},
		{"probabilistic_salted", []sampling.PolicyConfig{saltedPolicy("sample", "salt", 10)}},
		{"chain", []sampling.PolicyConfig{
			statusPolicy("errors", "ERROR"), latencyPolicy("slow", 500, 0), probPolicy("sample", 10),
		}},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	traces := make([]sampling.Trace, 1024)
	for i := range traces {
		fillBenchTrace(&traces[i], i, rng)
	}
	for _, c := range cases {
		b.Run("policy="+c.name, func(b *testing.B) {
			e := newEngine(b, c.cfgs...)
			kept := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if e.Decide(&traces[i&1023]).Keep() {
					kept++
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
			b.ReportMetric(float64(kept)/float64(b.N), "kept/decision")
		})
	}
}

// fillBenchTrace fills tr, the i-th trace of a benchmark's set, from rng: a
// third errors, random durations and randomness, every fourth head-sampled.
func fillBenchTrace(tr *sampling.Trace, i int, rng *rand.Rand) {
	tr.SetIdentity(randomID(rng), nil)
	if i%4 == 0 {
		tr.SetIdentity(tr.ID, []byte("ot=th:8"))
	}
	tr.SpanCount = 1 + rng.IntN(50)
	tr.StatusMask = sampling.StatusUnsetBit
	if rng.IntN(3) == 0 {
		tr.StatusMask |= sampling.StatusErrorBit
	}
	tr.Start = 1_700_000_000_000_000_000
	tr.End = tr.Start + rng.Uint64N(1000*ms)
}
