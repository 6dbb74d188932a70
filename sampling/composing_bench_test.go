package sampling_test

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// benchTraces is a pool of varied summaries: about a third with an error,
// random durations, span counts and sizes, and decision times 1ms apart.
func benchTraces() []sampling.Trace {
	rng := rand.New(rand.NewPCG(5, 6))
	traces := make([]sampling.Trace, 1024)
	for i := range traces {
		tr := &traces[i]
		tr.SetIdentity(randomID(rng), nil)
		tr.SpanCount = 1 + rng.IntN(50)
		tr.SizeBytes = uint64(tr.SpanCount) * (100 + rng.Uint64N(400))
		tr.StatusMask = sampling.StatusUnsetBit
		if rng.IntN(3) == 0 {
			tr.StatusMask |= sampling.StatusErrorBit
		}
		tr.Start = 1_700_000_000_000_000_000
		tr.End = tr.Start + rng.Uint64N(1000*ms)
	}
	return traces
}

// BenchmarkComposingEvaluate measures one Evaluate per op of each policy
// type. The decision time advances 1ms per op, so the rate policies refill
// and roll over seconds as in steady traffic.
func BenchmarkComposingEvaluate(b *testing.B) {
	cases := []struct {
		name string
		cfg  sampling.PolicyConfig
	}{
		{"rate_limiting", rateLimitingPolicy("rl", 5000, 0)},
		{"bytes_limiting", bytesLimitingPolicy("bl", 1_000_000, 0)},
		{"and", andPolicy("and", statusPolicy("errors", "ERROR"), latencyPolicy("slow", 500, 0), probPolicy("p", 50))},
		{"not", notPolicy("not", statusPolicy("errors", "ERROR"))},
		{"drop", dropPolicy("drop", latencyPolicy("fast", 0, 100), notPolicy("n", statusPolicy("errors", "ERROR")))},
		{"composite", compositePolicy("c", 5000, []sampling.RateAllocationConfig{{Policy: "errors", Percent: 60}},
			statusPolicy("errors", "ERROR"), andPolicy("slow-sampled", latencyPolicy("slow", 500, 0), probPolicy("p", 50)), probPolicy("rest", 10))},
	}
	traces := benchTraces()
	for _, c := range cases {
		b.Run("policy="+c.name, func(b *testing.B) {
			p := build(b, c.cfg)
			kept := 0
			now := t0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr := &traces[i&1023]
				tr.Now = now
				if p.Evaluate(tr).Keep() {
					kept++
				}
				i++
				now += 1_000_000
			}
			b.ReportMetric(float64(kept)/float64(b.N), "kept/op")
		})
	}
}

// BenchmarkRateLimitingParallel measures contention on one token bucket
// shared by all goroutines, as shards share a policy.
func BenchmarkRateLimitingParallel(b *testing.B) {
	p := build(b, rateLimitingPolicy("rl", 5000, 0))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		tr := sampling.Trace{SpanCount: 3, Now: t0}
		for pb.Next() {
			tr.Now += 1000
			p.Evaluate(&tr)
		}
	})
}

// BenchmarkOTTLConditionEvaluate measures ottl_condition on a decoded trace
// of 10 spans with 3 attributes and one event each; the matching span, when
// there is one, is the last. OTTL evaluation allocates.
func BenchmarkOTTLConditionEvaluate(b *testing.B) {
	specs := make([]spanSpec, 10)
	for i := range specs {
		specs[i] = spanSpec{
			attrs:      map[string]any{"http.route": "/api/items", "http.status_code": 200, "peer": "db"},
			eventAttrs: map[string]any{"exception.type": "none"},
		}
	}
	miss := traceOf(traceID(1), specs...)
	specs[9].attrs = map[string]any{"http.route": "/api/items", "http.status_code": 503, "peer": "db"}
	hit := traceOf(traceID(2), specs...)
	cases := []struct {
		name string
		cfg  sampling.PolicyConfig
		td   ptrace.Traces
	}{
		{"span/miss", ottlPolicy("o", []string{`attributes["http.status_code"] >= 500`}, nil), miss},
		{"span/hit-last", ottlPolicy("o", []string{`attributes["http.status_code"] >= 500`}, nil), hit},
		{"spanevent/miss", ottlPolicy("o", nil, []string{`attributes["exception.type"] == "timeout"`}), miss},
		{"span+spanevent/miss", ottlPolicy("o", []string{`attributes["http.status_code"] >= 500`, `resource.attributes["service.name"] == "x"`}, []string{`name == "retry"`}), miss},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := newEngine(b, c.cfg)
			p := build(b, c.cfg)
			tr := samplingtest.Summarize(b, e, c.td, t0)
			b.ReportAllocs()
			for b.Loop() {
				p.Evaluate(tr)
			}
		})
	}
}
