package sampling_test

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailsift/tailsift/sampling"
)

// dynamicBenchTraces returns 1024 varied traces (a third errors, random durations
// and randomness, a quarter head-sampled) over n root keys.
func dynamicBenchTraces(n int) []sampling.Trace {
	rng := rand.New(rand.NewPCG(31, 32))
	key := zipfKeys(n)
	traces := make([]sampling.Trace, 1024)
	for i := range traces {
		tr := &traces[i]
		fillBenchTrace(tr, i, rng)
		tr.Keys[0], tr.KeySet = uint64(key(rng))*0x9E3779B97F4A7C15, 1
	}
	return traces
}

// decideLoop decides the traces in turn, 10 µs apart (100k traces/s of
// virtual time, so the engine adjusts as it would in production), after a
// warm-up that adds every key; it reports the kept ratio.
func decideLoop(b *testing.B, e *sampling.Engine, traces []sampling.Trace) {
	now := int64(0)
	for i := range 100_000 {
		tr := &traces[i&1023]
		tr.Now = now
		e.Decide(tr)
		now += 10_000
	}
	kept := 0
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		tr := &traces[i&1023]
		tr.Now = now
		if e.Decide(tr).Keep() {
			kept++
		}
		now += 10_000
		i++
	}
	b.ReportMetric(float64(kept)/float64(b.N), "kept-ratio")
}

// BenchmarkDynamicEvaluate measures a decision by one dynamic policy, per
// number of root keys, and from all CPUs at once (parallel=true: shards
// sharing the policy). Compare runs with
//
//	go test -run '^$' -bench 'Dynamic|Budget' -count 10 ./sampling/ > new.txt && benchstat old.txt new.txt
func BenchmarkDynamicEvaluate(b *testing.B) {
	for _, keys := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			e := newEngine(b, dynPolicy("dyn", sampling.DynamicConfig{
				GoalTracesPerSecond: 100, AdjustmentInterval: time.Second,
			}))
			decideLoop(b, e, dynamicBenchTraces(keys))
		})
	}
	b.Run("keys=1000/parallel=true", func(b *testing.B) {
		e := newEngine(b, dynPolicy("dyn", sampling.DynamicConfig{
			GoalTracesPerSecond: 100, AdjustmentInterval: time.Second,
		}))
		traces := dynamicBenchTraces(1000)
		var clock atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine decides copies of its own, on the shared clock.
			local := make([]sampling.Trace, len(traces))
			copy(local, traces)
			i := 0
			for pb.Next() {
				tr := &local[i&1023]
				tr.Now = clock.Add(10_000)
				e.Decide(tr)
				i++
			}
		})
	})
}

// BenchmarkDecideBudget measures a decision by the engine of the budget
// example (errors, slow, probabilistic and dynamic policies in three
// classes) with a budget in traces and in spans per second, and without.
func BenchmarkDecideBudget(b *testing.B) {
	cfgs := []sampling.PolicyConfig{
		statusPolicy("errors", "ERROR"),
		latencyPolicy("slow", 500, 0),
		probPolicy("baseline", 10),
		dynPolicy("dynamic", sampling.DynamicConfig{GoalTracesPerSecond: 100, AdjustmentInterval: time.Second}),
	}
	classes := []sampling.BudgetClass{
		{Name: "errors", Policies: []string{"errors"}, NeverDrop: true},
		{Name: "slow", Policies: []string{"slow"}},
		{Name: "rest", Policies: []string{"baseline", "dynamic"}},
	}
	for _, c := range []struct {
		name   string
		budget sampling.BudgetConfig
	}{
		{"none", sampling.BudgetConfig{}},
		// At 100k traces/s, a third errors and half the rest slow, both
		// budgets thin the slow class to about half and starve the rest.
		{"traces", sampling.BudgetConfig{TracesPerSecond: 50_000, Classes: classes}},
		{"spans", sampling.BudgetConfig{SpansPerSecond: 1_250_000, Classes: classes}},
	} {
		b.Run("budget="+c.name, func(b *testing.B) {
			e, err := sampling.NewEngine(cfgs, sampling.WithBudget(c.budget))
			if err != nil {
				b.Fatal(err)
			}
			decideLoop(b, e, dynamicBenchTraces(1000))
		})
	}
}
