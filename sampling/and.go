package sampling

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// AndConfig keeps a trace when every sub-policy keeps it, as contrib's and
// policy does.
type AndConfig struct {
	// SubPolicies are evaluated in order; the first that does not keep the
	// trace ends the evaluation (later ones, e.g. a rate_limiting, are not
	// charged).
	SubPolicies []PolicyConfig `mapstructure:"and_sub_policy"`
}

// Validate implements the config validator.
func (c *AndConfig) Validate() error {
	return validateSubPolicies("and_sub_policy", c.SubPolicies, andSubTypes)
}

// sharedSubTypes are the policy types contrib's sharedPolicyCfg builds: what
// it allows under not, and with not under and and drop, and with and under
// composite. Types not registered in this build are refused as unknown.
var sharedSubTypes = []string{
	"always_sample", "boolean_attribute", "bytes_limiting", "latency",
	"numeric_attribute", "ottl_condition", "probabilistic", "rate_limiting",
	"span_count", "status_code", "string_attribute", "trace_flags", "trace_state",
}

// validatePolicy and buildPolicy are PolicyConfig.Validate and
// builder.Policy, set in init: the composing policies' constructors are in
// the registry, and those methods read it, which would otherwise be an
// initialization cycle.
var (
	validatePolicy func(*PolicyConfig) error
	buildPolicy    func(*builder, *PolicyConfig) (evaluator, error)
)

func init() {
	validatePolicy = (*PolicyConfig).Validate
	buildPolicy = (*builder).Policy
}

var (
	andSubTypes       = slices.Sorted(slices.Values(append([]string{"not"}, sharedSubTypes...)))
	notSubTypes       = sharedSubTypes
	dropSubTypes      = andSubTypes
	compositeSubTypes = slices.Sorted(slices.Values(append([]string{"and"}, sharedSubTypes...)))
)

// validateSubPolicies checks a list of sub-policies under key.
func validateSubPolicies(key string, subs []PolicyConfig, allowed []string) error {
	if len(subs) == 0 {
		return errors.New(key + ": must list at least one policy")
	}
	for i := range subs {
		if err := validateSubPolicy(fmt.Sprintf("%s::%d", key, i), &subs[i], allowed); err != nil {
			return err
		}
	}
	return nil
}

// validateSubPolicy checks the sub-policy c found at key: a type contrib
// allows there, then the policy's own settings. contrib does not require a
// sub-policy name, so an unnamed one is named after its key.
func validateSubPolicy(key string, c *PolicyConfig, allowed []string) error {
	switch {
	case c.Type == "":
		return errors.New(key + "::type: missing")
	case !slices.Contains(allowed, c.Type):
		return fmt.Errorf("%s::type: %q is not allowed here (allowed: %s)", key, c.Type, strings.Join(allowed, ", "))
	}
	if c.Name == "" {
		c.Name = key
	}
	if err := validatePolicy(c); err != nil {
		return fmt.Errorf("%s::%w", key, err)
	}
	return nil
}

// buildSubPolicies validates and builds the sub-policies under key.
func buildSubPolicies(b *builder, key string, subs []PolicyConfig, allowed []string) ([]evaluator, error) {
	if err := validateSubPolicies(key, subs, allowed); err != nil {
		return nil, err
	}
	ps := make([]evaluator, len(subs))
	for i := range subs {
		p, err := buildPolicy(b, &subs[i])
		if err != nil {
			return nil, fmt.Errorf("%s::%d: %w", key, i, err)
		}
		ps[i] = p
	}
	return ps, nil
}

type and struct{ subs []evaluator }

func newAnd(settings any, b *builder) (evaluator, error) {
	c := settings.(*AndConfig)
	subs, err := buildSubPolicies(b, "and_sub_policy", c.SubPolicies, andSubTypes)
	if err != nil {
		return nil, err
	}
	return and{subs: subs}, nil
}

// Evaluate is contrib's And.EvaluateWithThreshold: NotSampled as soon as a
// sub-policy answers NotSampled or InvertNotSampled, else Sampled (an
// InvertSampled sub-policy passes) with the strictest of the sub-policies'
// thresholds, since the trace passed them all.
//
// A refusal on randomness (the sub-policy's refusal carries a threshold)
// is marked unknownRV: and does not state its set of randomness values,
// and the engine then keeps its most permissive threshold (keepSet).
func (p and) Evaluate(t *Trace) Decision {
	strictest := keepAlways
	for _, s := range p.subs {
		d := s.Evaluate(t)
		if d.Verdict == NotSampled && (d.Threshold != otelsampling.AlwaysSampleThreshold || d.rv&unknownRV != 0) {
			return Decision{rv: unknownRV}
		}
		if d.Verdict == NotSampled || d.Verdict == InvertNotSampled {
			return Decision{}
		}
		if otelsampling.ThresholdGreater(d.Threshold, strictest.Threshold) {
			strictest = d // with the randomness it was decided on
		}
	}
	strictest.Verdict = Sampled
	return strictest
}
