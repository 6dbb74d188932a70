package selfmetrics

import (
	"fmt"

	"go.opentelemetry.io/otel/metric"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// NewBuffer creates the trace buffer of a component whose generated
// instruments are in: the buffer's events are recorded with them (set's
// Observer is replaced by wrap of the recording observer, so that a tee such
// as the status page sees the same events), and, when cfg has a budget,
// budget's registrations (the component's generated callback registrations)
// get the gauges of its class probabilities and of its rate.
func NewBuffer(cfg tracebuf.Config, emit tracebuf.Emit, set tracebuf.Settings, in Instruments,
	budget BudgetGauges, wrap func(tracebuf.Observer) tracebuf.Observer,
) (*tracebuf.Buffer, error) {
	set.Observer = wrap(NewObserver(in))
	buf, err := tracebuf.New(cfg, emit, set)
	if err != nil {
		return nil, err
	}
	if buf.Engine().HasBudget() {
		if err := budget.ClassProbability(ClassProbabilities(buf.Engine())); err != nil {
			return nil, fmt.Errorf("register budget class probability metric: %w", err)
		}
		if err := budget.Rate(BudgetRate(buf.Engine())); err != nil {
			return nil, fmt.Errorf("register budget rate metric: %w", err)
		}
	}
	return buf, nil
}

// BudgetGauges are a component's generated callback registrations of its
// budget gauges.
type BudgetGauges struct {
	// ClassProbability registers budget_class_probability.
	ClassProbability func(metric.Float64Callback) error
	// Rate registers budget_rate.
	Rate func(metric.Float64Callback) error
}
