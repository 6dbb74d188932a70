package selfmetrics

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tailsift/tailsift/sampling"
)

// ClassProbabilities returns the callback of the budget class probability
// gauge: each class's current probability, with a class attribute. The
// attribute sets are built once; the callback allocates nothing.
func ClassProbabilities(e *sampling.Engine) metric.Float64Callback {
	classes := e.ClassProbabilities(nil)
	attrs := make([]metric.ObserveOption, len(classes))
	for i, c := range classes {
		attrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("class", c.Name)))
	}
	var mu sync.Mutex
	buf := make([]sampling.ClassProbability, 0, len(classes))
	return func(_ context.Context, o metric.Float64Observer) error {
		mu.Lock()
		defer mu.Unlock()
		buf = e.ClassProbabilities(buf[:0])
		for i, c := range buf {
			o.Observe(c.Probability, attrs[i])
		}
		return nil
	}
}

// BudgetRate returns the callback of the budget rate gauge: the rate the
// budget allots now, which is this gateway's share when a cluster shares
// the budget.
func BudgetRate(e *sampling.Engine) metric.Float64Callback {
	return func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(e.BudgetEffectiveRate())
		return nil
	}
}
