package samplingtest

import (
	"sync"
	"sync/atomic"

	"github.com/tailsift/tailsift/sampling"
)

// Evaluator is a policy as its tests see it (sampling's evaluator).
type Evaluator interface {
	Evaluate(t *sampling.Trace) sampling.Decision
}

// KeptConcurrently evaluates p on evaluations single-span traces at now from
// each of goroutines goroutines at once, and returns how many it kept: the
// check that a policy's limit holds under concurrent decisions.
func KeptConcurrently(p Evaluator, now int64, goroutines, evaluations int) int {
	var (
		wg   sync.WaitGroup
		kept atomic.Int64
	)
	for range goroutines {
		wg.Go(func() {
			for range evaluations {
				if p.Evaluate(&sampling.Trace{Now: now, SpanCount: 1}).Keep() {
					kept.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(kept.Load())
}
