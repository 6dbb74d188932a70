package sampling

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

type and struct {
	subs  []evaluator
	salts []uint64 // the engine's salts, as far as the sub-policies' go
}

func newAnd(settings any, b *builder) (evaluator, error) {
	c := settings.(*AndConfig)
	subs, err := buildSubPolicies(b, "and_sub_policy", c.SubPolicies, andSubTypes)
	if err != nil {
		return nil, err
	}
	// The sub-policies' salts are registered by now; later ones are
	// appended after them.
	return and{subs: subs, salts: b.salts}, nil
}

// Evaluate is contrib's And.EvaluateWithThreshold: NotSampled as soon as a
// sub-policy answers NotSampled or InvertNotSampled, else Sampled (an
// InvertSampled sub-policy passes) with the strictest of the sub-policies'
// thresholds, since the trace passed them all.
//
// Its decision states its set of randomness values, kept or refused, so
// that the engine can measure the union of the policies' sets (keepSet):
// the intersection of its sub-policies' sets (andSets). A refusal on
// randomness carries the strictest threshold when they sample on one
// randomness, and unknownRV otherwise (the engine then keeps its most
// permissive threshold). A trace kept by sub-policies on different
// randomness (salts, or a randomness and its reflection) is kept with the
// probability of the intersection, on a randomness derived from the
// trace's (derivedRV, andSets.derive).
func (p and) Evaluate(t *Trace) Decision {
	var s andSets
	refused, empty := p.eval(t, &s)
	switch {
	case empty:
		return Decision{}
	case refused && s.mixed:
		return Decision{rv: unknownRV}
	case refused:
		d := s.strictest
		d.Verdict = NotSampled
		return d
	case s.mixed:
		return s.derive(t, p.salts)
	}
	d := s.strictest
	d.Verdict = Sampled
	return d
}
