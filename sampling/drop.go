package sampling

import (
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// DropConfig drops a trace that every sub-policy keeps, as contrib's drop
// policy does. The engine evaluates drop policies before all others, and a
// Dropped verdict wins over any other policy's.
type DropConfig struct {
	SubPolicies []PolicyConfig `mapstructure:"drop_sub_policy"`
}

// Validate implements the config validator.
func (c *DropConfig) Validate() error {
	return validateSubPolicies("drop_sub_policy", c.SubPolicies, dropSubTypes)
}

type drop struct{ subs []evaluator }

func newDrop(settings any, b *builder) (evaluator, error) {
	c := settings.(*DropConfig)
	subs, err := buildSubPolicies(b, "drop_sub_policy", c.SubPolicies, dropSubTypes)
	if err != nil {
		return nil, err
	}
	return drop{subs: subs}, nil
}

// Evaluate answers Dropped unless a sub-policy answers NotSampled or
// InvertNotSampled, in which case it answers NotSampled, as contrib.
//
// When that sub-policy refused on randomness (its refusal carries a
// threshold), the drop would have dropped the trace with a higher
// randomness: the traces it lets through are kept with a probability the
// engine must mark, as not's (Engine.Decide). The refusal then carries the
// drop's own set, {R ≥ th}, th being the strictest threshold of the
// sub-policies that sample on that randomness: the sub-policies after the
// one that refused are evaluated for it as Redecide evaluates them
// (learning and charging nothing). If one of them refuses whatever the
// randomness, the trace survives with probability 1 (a refusal without a
// threshold); if two sample on different randomness, the surviving set is
// not one threshold's, and the refusal carries none, as before.
func (p drop) Evaluate(t *Trace) Decision {
	var (
		rv      uint8
		hasRand bool // a sub-policy sampled t on randomness rv
		mixed   bool // on different randomness
	)
	for i, s := range p.subs {
		d := s.Evaluate(t)
		switch {
		case d.Verdict == InvertNotSampled:
			return Decision{}
		case d.Verdict == NotSampled:
			if d.Threshold == otelsampling.AlwaysSampleThreshold || d.rv&unknownRV != 0 || mixed || (hasRand && d.rv != rv) {
				return Decision{}
			}
			return p.refusal(t, i+1, d)
		case d.Verdict == Sampled && d.Threshold != otelsampling.AlwaysSampleThreshold:
			mixed = mixed || (hasRand && d.rv != rv) || d.rv&unknownRV != 0
			rv, hasRand = d.rv, true
		}
	}
	return Decision{Verdict: Dropped}
}

// refusal is the drop's refusal when its sub-policy i-1 refused with d, on
// randomness: the strictest threshold of the sub-policies from i on that
// sample on d's randomness, probed as in Redecide.
func (p drop) refusal(t *Trace, i int, d Decision) Decision {
	redo, pending := t.redo, t.pending
	t.redo = true
	defer func() { t.redo, t.pending = redo, pending }()
	th := d.Threshold
	for _, s := range p.subs[i:] {
		l := s.Evaluate(t)
		switch {
		case l.Verdict == InvertNotSampled:
			return Decision{}
		case l.Verdict != Sampled && l.Verdict != NotSampled:
		case l.Threshold == otelsampling.AlwaysSampleThreshold:
			if l.Verdict == NotSampled {
				return Decision{} // never dropped
			}
		case l.rv != d.rv:
			return Decision{}
		default:
			th = maxThreshold(th, l.Threshold)
		}
	}
	return Decision{Threshold: th, rv: d.rv}
}
