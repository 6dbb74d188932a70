package sampling

import (
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// Engine evaluates an ordered policy list; the first policy that keeps wins.
type Engine struct {
	policies []Policy
	names    []string
}

// NewEngine builds the policies of cfgs, which must have passed ValidatePolicies.
func NewEngine(cfgs []PolicyConfig) (*Engine, error) {
	e := &Engine{}
	for i := range cfgs {
		c := &cfgs[i]
		f, ok := registry[c.Type]
		if !ok {
			return nil, fmt.Errorf("policies::%d::type: unknown policy type %q", i, c.Type)
		}
		settings := c.settings
		if settings == nil {
			settings = f.defaultConfig()
		}
		p, err := f.create(settings)
		if err != nil {
			return nil, fmt.Errorf("policies::%d (%s): %w", i, c.Name, err)
		}
		e.policies = append(e.policies, p)
		e.names = append(e.names, c.Name)
	}
	return e, nil
}

// Names lists the policy names in evaluation order.
func (e *Engine) Names() []string { return e.names }

// Decide evaluates the policies in order. A kept trace's threshold is the
// stricter of the deciding policy's and the one that arrived with the trace,
// since both sampled the same randomness (consistent sampling).
func (e *Engine) Decide(t *Trace) Decision {
	for i, p := range e.policies {
		d := p.Evaluate(t)
		if !d.Keep {
			continue
		}
		d.Policy = e.names[i]
		if t.HasHead && sampling.ThresholdGreater(t.HeadThreshold, d.Threshold) {
			d.Threshold = t.HeadThreshold
		}
		return d
	}
	return Decision{}
}
