package sampling

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
// InvertNotSampled, in which case it answers NotSampled; sub-policies after
// that one are not evaluated.
func (p drop) Evaluate(t *Trace) Decision {
	for _, s := range p.subs {
		if d := s.Evaluate(t); d.Verdict == NotSampled || d.Verdict == InvertNotSampled {
			return Decision{}
		}
	}
	return Decision{Verdict: Dropped}
}
