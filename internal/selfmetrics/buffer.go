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
// registerBudget (the component's budget_class_probability callback
// registration) gets the gauge of its class probabilities.
func NewBuffer(cfg tracebuf.Config, emit tracebuf.Emit, set tracebuf.Settings, in Instruments,
	registerBudget func(metric.Float64Callback) error, wrap func(tracebuf.Observer) tracebuf.Observer,
) (*tracebuf.Buffer, error) {
	set.Observer = wrap(NewObserver(in))
	buf, err := tracebuf.New(cfg, emit, set)
	if err != nil {
		return nil, err
	}
	if buf.Engine().HasBudget() {
		if err := registerBudget(ClassProbabilities(buf.Engine())); err != nil {
			return nil, fmt.Errorf("register budget metric: %w", err)
		}
	}
	return buf, nil
}
