package sampling

import "errors"

// NotConfig inverts one sub-policy, as contrib's not policy does.
type NotConfig struct {
	SubPolicy PolicyConfig `mapstructure:"not_sub_policy"`
}

// Validate implements the config validator.
func (c *NotConfig) Validate() error {
	if c.SubPolicy.Type == "" && c.SubPolicy.Name == "" {
		return errors.New("not_sub_policy: missing")
	}
	return validateSubPolicy("not_sub_policy", &c.SubPolicy, notSubTypes)
}

type not struct{ sub evaluator }

func newNot(settings any, b *builder) (evaluator, error) {
	c := settings.(*NotConfig)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	sub, err := buildPolicy(b, &c.SubPolicy)
	if err != nil {
		return nil, errors.New("not_sub_policy: " + err.Error())
	}
	return not{sub: sub}, nil
}

// Evaluate turns Sampled into NotSampled and NotSampled into Sampled (with
// probability 1); any other verdict, such as an invert_match filter's, is
// returned as is, as in contrib.
func (p not) Evaluate(t *Trace) Decision {
	d := p.sub.Evaluate(t)
	switch d.Verdict {
	case Sampled:
		return Decision{}
	case NotSampled:
		return keepAlways
	}
	return d
}
