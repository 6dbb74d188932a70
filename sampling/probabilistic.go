package sampling

import (
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// ProbabilisticConfig keeps SamplingPercentage % of traces, consistently: the
// decision depends only on the trace's randomness (its explicit rv, or the
// low 56 bits of its trace ID), so every collector decides a trace alike.
type ProbabilisticConfig struct {
	// SamplingPercentage is in (0, 100].
	SamplingPercentage float64 `mapstructure:"sampling_percentage"`
}

// Validate implements the config validator.
func (c *ProbabilisticConfig) Validate() error {
	if c.SamplingPercentage <= 0 || c.SamplingPercentage > 100 {
		return fmt.Errorf("sampling_percentage: must be in (0, 100], got %v", c.SamplingPercentage)
	}
	if _, err := sampling.ProbabilityToThreshold(c.SamplingPercentage / 100); err != nil {
		return fmt.Errorf("sampling_percentage: %w", err)
	}
	return nil
}

type probabilistic struct{ threshold sampling.Threshold }

func newProbabilistic(settings any, _ *builder) (evaluator, error) {
	c := settings.(*ProbabilisticConfig)
	th, err := sampling.ProbabilityToThreshold(c.SamplingPercentage / 100)
	if err != nil {
		return nil, fmt.Errorf("sampling_percentage: %w", err)
	}
	return probabilistic{threshold: th}, nil
}

func (p probabilistic) Evaluate(t *Trace) Decision {
	if t.ShouldSample(p.threshold) {
		return sampledAt(p.threshold)
	}
	return Decision{}
}
