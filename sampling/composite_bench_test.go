package sampling_test

import (
	"testing"

	"github.com/tailsift/tailsift/sampling"
)

// BenchmarkCompositeConsistent measures one Engine.Decide per op of a
// composite in mode consistent, over benchTraces (a third errors, 1 to 50
// spans, decision times 1ms apart), at a total that binds.
//
//	go test -run '^$' -bench 'CompositeConsistent' -benchmem -count 10 ./sampling/ | benchstat -
func BenchmarkCompositeConsistent(b *testing.B) {
	cases := []struct {
		name string
		subs []sampling.PolicyConfig
	}{
		{"deterministic", []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), latencyPolicy("slow", 500, 0)}},
		{"samplers", []sampling.PolicyConfig{statusPolicy("errors", "ERROR"), probPolicy("a", 50), probPolicy("b", 10)}},
		{"salted", []sampling.PolicyConfig{saltedPolicy("salted", "s", 10), probPolicy("p", 20)}},
		{"not", []sampling.PolicyConfig{andPolicy("not30", notPolicy("n", probPolicy("q", 30))), probPolicy("p", 20)}},
	}
	traces := benchTraces()
	for _, c := range cases {
		b.Run("subs="+c.name, func(b *testing.B) {
			e := newEngine(b, consistentComposite("c", 5000, nil, c.subs...))
			kept := 0
			now := t0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr := &traces[i&1023]
				tr.Now = now
				if e.Decide(tr).Keep() {
					kept++
				}
				i++
				now += 1_000_000
			}
			b.ReportMetric(float64(kept)/float64(b.N), "kept/op")
		})
	}
}
