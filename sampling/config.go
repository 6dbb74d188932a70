package sampling

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// PolicyConfig is one entry of `policies:`. Its YAML shape is
// `{name: N, type: T, T: {...}}`, as in contrib's tail_sampling; T selects an
// entry of the registry, which knows its settings and its constructor.
type PolicyConfig struct {
	// Name identifies the policy in decisions, metrics and tracestate reasons.
	Name string `mapstructure:"name"`
	// Type selects the policy kind.
	Type string `mapstructure:"type"`
	// settings holds the type's own settings (the `<type>:` block): the
	// registry's default config for the type, then unmarshalled. It is
	// unexported so that the collector's validator does not walk it under a
	// wrong key; Validate checks it and names the key.
	settings any
}

// NewPolicyConfig returns a policy config of the given type; settings must be
// the pointer type the registry uses for it (e.g. *LatencyConfig), or nil for
// the type's defaults.
func NewPolicyConfig(name, typ string, settings any) PolicyConfig {
	return PolicyConfig{Name: name, Type: typ, settings: settings}
}

// validator is the Validate method of a settings struct.
type validator interface{ Validate() error }

var _ confmap.Unmarshaler = (*PolicyConfig)(nil)

// Unmarshal implements confmap.Unmarshaler: it decodes the `<type>:` block into
// the registered settings of that type and refuses unknown keys.
func (p *PolicyConfig) Unmarshal(conf *confmap.Conf) error {
	name, _ := conf.Get("name").(string)
	rawType := conf.Get("type")
	typ, isString := rawType.(string)
	switch {
	case rawType == nil:
		return errors.New("type: missing")
	case !isString:
		return fmt.Errorf("type: must be a string, got %v", rawType)
	}
	p.Name, p.Type = name, typ
	f, ok := registry[typ]
	if !ok {
		return fmt.Errorf("type: unknown policy type %q (known: %s)", typ, strings.Join(Types(), ", "))
	}
	for k := range conf.ToStringMap() {
		if k != "name" && k != "type" && k != typ {
			return fmt.Errorf("unknown key %q (a policy has name, type and a block named after its type)", k)
		}
	}
	p.settings = f.defaultConfig()
	if v := conf.Get(typ); v != nil {
		if _, isMap := v.(map[string]any); !isMap {
			// Read as an empty block, `latency: [...]` or `latency: 60000`
			// was a latency policy of threshold 0: keep every trace.
			return fmt.Errorf("%s: must be a mapping of settings, got %T (%v)", typ, v, v)
		}
	}
	sub, err := conf.Sub(typ)
	if err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	if len(sub.AllKeys()) > 0 {
		if err := sub.Unmarshal(p.settings); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
	}
	return nil
}

// Validate checks the name, the type and the type's settings, naming the key.
func (p *PolicyConfig) Validate() error {
	if p.Name == "" {
		return errors.New("name: must not be empty")
	}
	f, ok := registry[p.Type]
	if !ok {
		return fmt.Errorf("type: unknown policy type %q (known: %s)", p.Type, strings.Join(Types(), ", "))
	}
	if p.settings == nil {
		p.settings = f.defaultConfig()
	}
	if v, ok := p.settings.(validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%s: %w", p.Type, err)
		}
	}
	return nil
}

// ValidatePolicies checks a policy list as a whole: at least one policy and
// unique names. Each entry's own Validate checks the rest.
func ValidatePolicies(ps []PolicyConfig) error {
	if len(ps) == 0 {
		return errors.New("policies: at least one policy is required")
	}
	return uniqueNames("policies", len(ps), func(i int) string { return ps[i].Name })
}

// uniqueNames checks that the n entries of the list key have distinct
// names (an empty name is reported by the entry's own Validate).
func uniqueNames(key string, n int, name func(i int) string) error {
	seen := make(map[string]int, n)
	for i := range n {
		if j, dup := seen[name(i)]; dup && name(i) != "" {
			return fmt.Errorf("%s::%d::name: %q is already used by %s::%d", key, i, name(i), key, j)
		}
		seen[name(i)] = i
	}
	return nil
}

// factory is a registry entry.
type factory struct {
	defaultConfig func() any
	create        func(settings any, b *builder) (evaluator, error)
}

// registry maps a policy type to its settings and constructor. Adding a
// policy is one file plus one line here.
var registry = map[string]factory{
	"status_code":       {defaultConfig: func() any { return &StatusCodeConfig{} }, create: newStatusCode},
	"latency":           {defaultConfig: func() any { return &LatencyConfig{} }, create: newLatency},
	"probabilistic":     {defaultConfig: func() any { return &ProbabilisticConfig{} }, create: newProbabilistic},
	"always_sample":     {defaultConfig: func() any { return &AlwaysSampleConfig{} }, create: newAlwaysSample},
	"numeric_attribute": {defaultConfig: func() any { return &NumericAttributeConfig{} }, create: newNumericAttribute},
	"string_attribute":  {defaultConfig: func() any { return &StringAttributeConfig{} }, create: newStringAttribute},
	"boolean_attribute": {defaultConfig: func() any { return &BooleanAttributeConfig{} }, create: newBooleanAttribute},
	"trace_state":       {defaultConfig: func() any { return &TraceStateConfig{} }, create: newTraceState},
	"trace_flags":       {defaultConfig: func() any { return &TraceFlagsConfig{} }, create: newTraceFlags},
	"span_count":        {defaultConfig: func() any { return &SpanCountConfig{} }, create: newSpanCount},
	"rate_limiting":     {defaultConfig: func() any { return &RateLimitingConfig{Mode: LimitConsistent} }, create: newRateLimiting},
	"bytes_limiting":    {defaultConfig: func() any { return &BytesLimitingConfig{Mode: LimitConsistent} }, create: newBytesLimiting},
	"and":               {defaultConfig: func() any { return &AndConfig{} }, create: newAnd},
	"not":               {defaultConfig: func() any { return &NotConfig{} }, create: newNot},
	"drop":              {defaultConfig: func() any { return &DropConfig{} }, create: newDrop},
	"composite":         {defaultConfig: func() any { return &CompositeConfig{Mode: LimitConsistent} }, create: newComposite},
	"ottl_condition":    {defaultConfig: func() any { return &OTTLConditionConfig{} }, create: newOTTLCondition},
	"dynamic":           {defaultConfig: defaultDynamicConfig, create: newDynamic},
	"adaptive":          {defaultConfig: func() any { return defaultAdaptiveConfig() }, create: newAdaptive},
}

// Types lists the registered policy types, sorted.
func Types() []string {
	return slices.Sorted(maps.Keys(registry))
}
