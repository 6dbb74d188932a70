package sampling_test

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailsift/tailsift/sampling"
)

// warmTraces returns a pool of traces over keys routes, durations log-normal
// around each route's median, 3 % errors, 0.5 % of them ×5 outliers.
func warmTraces(n, keys int) []sampling.Trace {
	rng := rand.New(rand.NewPCG(9, 9))
	medians := make([]float64, keys)
	hashes := make([]uint64, keys)
	for i := range medians {
		medians[i] = 50e6 * math.Exp(1.2*rng.NormFloat64())
		hashes[i] = rng.Uint64()
	}
	traces := make([]sampling.Trace, n)
	for i := range traces {
		k := rng.IntN(keys)
		d := medians[k] * math.Exp(0.4*rng.NormFloat64())
		if rng.Float64() < 0.005 {
			d = medians[k] * 5
		}
		status := sampling.StatusOKBit
		if rng.Float64() < 0.03 {
			status = sampling.StatusErrorBit
		}
		tr := &traces[i]
		*tr = sampling.Trace{SpanCount: 1, StatusMask: status, KeySet: 1}
		tr.SetIdentity(randomID(rng), nil)
		tr.Keys[0] = hashes[k]
		tr.Start = 1_700_000_000_000_000_000
		tr.End = tr.Start + uint64(d)
	}
	return traces
}

// BenchmarkAdaptiveDecide measures one decision of an engine holding the
// adaptive policy, on a model warmed with 200k traces over 1000 keys, with
// the trace time advancing 500 µs a decision (2k traces/s). The chain
// variant is the recommended policy set around it. Compare runs with
//
//	go test -run '^$' -bench 'Adaptive' -count 10 ./sampling/ | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkAdaptiveDecide(b *testing.B) {
	cases := []struct {
		name string
		cfgs []sampling.PolicyConfig
	}{
		{"adaptive", []sampling.PolicyConfig{sampling.NewPolicyConfig("anomalies", "adaptive", nil)}},
		{"chain", []sampling.PolicyConfig{
			statusPolicy("errors", "ERROR"), latencyPolicy("slow", 1000, 0),
			sampling.NewPolicyConfig("anomalies", "adaptive", nil), probPolicy("baseline", 0.01),
		}},
	}
	traces := warmTraces(1<<16, 1000)
	const step = int64(500 * time.Microsecond)
	for _, c := range cases {
		b.Run("policy="+c.name, func(b *testing.B) {
			e := newEngine(b, c.cfgs...)
			now := int64(1_700_000_000) * sec
			for i := range 200_000 {
				now += step
				tr := &traces[i&(len(traces)-1)]
				tr.Now = now
				e.Decide(tr)
			}
			kept, i := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				now += step
				tr := &traces[i&(len(traces)-1)]
				tr.Now = now
				if e.Decide(tr).Keep() {
					kept++
				}
				i++
			}
			b.ReportMetric(float64(kept)/float64(b.N), "kept/decision")
		})
	}
	// Shards decide concurrently on the shared model.
	b.Run("policy=adaptive/parallel", func(b *testing.B) {
		e := newEngine(b, cases[0].cfgs...)
		var clock atomic.Int64
		clock.Store(int64(1_700_000_000) * sec)
		for i := range 200_000 {
			tr := &traces[i&(len(traces)-1)]
			tr.Now = clock.Add(step)
			e.Decide(tr)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1) * 7919)
			tr := new(sampling.Trace)
			for pb.Next() {
				*tr = traces[i&(len(traces)-1)] // a copy: traces are shared by goroutines
				tr.Now = clock.Add(step)
				e.Decide(tr)
				i++
			}
		})
	})
}

// BenchmarkAdaptiveKey measures the default key function (root service and
// span name) on an encoded root span with a few attributes.
func BenchmarkAdaptiveKey(b *testing.B) {
	v := viewOf(b, oneSpan("checkout", "POST /api/v1/orders", map[string]any{
		"http.route": "/api/v1/orders", "http.method": "POST", "http.status_code": 201,
	}))
	for _, c := range []struct {
		name   string
		fields sampling.KeyFields
	}{
		{"default", sampling.DefaultKeyFields},
		{"service+route", sampling.KeyFields{"resource.service.name", "http.route"}},
	} {
		b.Run("key="+c.name, func(b *testing.B) {
			f, err := c.fields.Hasher()
			if err != nil {
				b.Fatal(err)
			}
			var sink uint64
			b.ReportAllocs()
			b.SetBytes(int64(len(v.Span) + len(v.Resource)))
			for b.Loop() {
				sink ^= f(v)
			}
			if sink == 1 {
				b.Log(sink)
			}
		})
	}
}
