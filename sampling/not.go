package sampling

import (
	"errors"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

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

// Evaluate turns Sampled into NotSampled and NotSampled into Sampled; any
// other verdict, such as an invert_match filter's, is returned as is, as in
// contrib.
//
// A sub-policy that refused deterministically (its refusal carries the
// threshold of probability 1) makes the trace kept with probability 1. One
// that refused on the trace's randomness R, because R is below its
// threshold th (probability q), makes not keep exactly the traces it
// refuses: those with R < th, a fraction 1-q. contrib marks them p = 1,
// which counts them 1/(1-q) times too few. Here they are kept with the
// complement threshold, 2^56 - th (probability 1-q), decided on the
// reflected randomness (Decision.rv's reflectRV): R' = 2^56-1 + h - R, h
// being the head threshold (0 without one), which maps the kept traces onto
// R' at or above the complement threshold scaled by the head, as
// consistent sampling requires. Kept spans carry R' as an explicit rv.
//
// A refusal says the same: when the sub-policy sampled on randomness, not
// answers NotSampled with the complement threshold on the reflected
// randomness, the set it would have kept, so that the engine can measure
// the union of the policies' sets (keepSet).
func (p not) Evaluate(t *Trace) Decision {
	d := p.sub.Evaluate(t)
	if d.Verdict != Sampled && d.Verdict != NotSampled {
		return d
	}
	out := Decision{} // the sub-policy sampled: refuse
	if d.Verdict == NotSampled {
		out = keepAlways
	}
	if d.Threshold == otelsampling.AlwaysSampleThreshold || d.rv&unknownRV != 0 {
		return out // decided whatever the randomness
	}
	c, err := otelsampling.UnsignedToThreshold(otelsampling.MaxAdjustedCount - d.Threshold.Unsigned())
	if err != nil {
		return out
	}
	out.Threshold, out.rv = c, d.rv|reflectRV
	return out
}
