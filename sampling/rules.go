package sampling

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspan"
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Rule mode is the decision model of contrib's adaptive_tail_sampling: an
// ordered list of rules, each with OTTL conditions and one sampler; the
// first rule whose conditions match a trace decides it with its sampler,
// and no later rule is asked. A trace no rule matches is dropped. It
// replaces the policy list (Engine.Decide) when WithRules is given.

// Match modes of RuleConfig.Match, as in contrib's adaptive_tail_sampling.
const (
	// MatchAnySpan: each condition holds for some span of the trace, not
	// necessarily the same one ("the trace has these characteristics").
	MatchAnySpan = "any_span"
	// MatchSameSpan: one span of the trace satisfies every condition.
	MatchSameSpan = "same_span"
)

// RuleConfig is one entry of `rules:`.
type RuleConfig struct {
	// Name identifies the rule in decisions, metrics and the sampling.rule
	// attribute of the traces it keeps.
	Name string `mapstructure:"name"`
	// Conditions are OTTL conditions in the span context (`span.`,
	// `resource.` and `scope.` paths; a path without a context is the
	// span's). All must hold, as Match says; a rule without conditions
	// matches every trace.
	Conditions []string `mapstructure:"conditions"`
	// Match is any_span (the default) or same_span; it needs conditions.
	Match string `mapstructure:"match"`
	// Sampler decides the traces the rule matches.
	Sampler SamplerConfig `mapstructure:"sampler"`
}

// SamplerConfig is a rule's sampler: any policy type, in the policy shape
// without a name (`{type: T, T: {...}}`); it takes the rule's name.
type SamplerConfig struct {
	// Type selects the policy kind.
	Type string `mapstructure:"type"`
	// settings is the type's block, as in PolicyConfig.
	settings any
}

// NewRuleConfig returns a rule; settings is as for NewPolicyConfig.
func NewRuleConfig(name string, conditions []string, typ string, settings any) RuleConfig {
	return RuleConfig{Name: name, Conditions: conditions, Sampler: SamplerConfig{Type: typ, settings: settings}}
}

var _ confmap.Unmarshaler = (*SamplerConfig)(nil)

// Unmarshal implements confmap.Unmarshaler as PolicyConfig.Unmarshal does,
// refusing a name: the sampler has its rule's.
func (s *SamplerConfig) Unmarshal(conf *confmap.Conf) error {
	if conf.IsSet("name") {
		return errors.New(`unknown key "name" (a sampler takes its rule's name; it has type and a block named after its type)`)
	}
	var p PolicyConfig
	if err := p.Unmarshal(conf); err != nil {
		return err
	}
	s.Type, s.settings = p.Type, p.settings
	return nil
}

// policy is the sampler as the policy named after its rule.
func (s *SamplerConfig) policy(name string) PolicyConfig {
	return PolicyConfig{Name: name, Type: s.Type, settings: s.settings}
}

// Validate checks the type and its settings, naming the key.
func (s *SamplerConfig) Validate() error {
	if s.Type == "" {
		return errors.New("type: missing")
	}
	p := s.policy("sampler")
	if err := p.Validate(); err != nil {
		return err
	}
	s.settings = p.settings
	if sc, ok := s.settings.(*StatusCodeConfig); ok && sc.KeepOnArrival {
		return errors.New("status_code: keep_on_arrival: not available in a rule (a rule decides on the whole trace, in order)")
	}
	return nil
}

// Validate checks the name, the match mode and every condition.
func (r *RuleConfig) Validate() error {
	if r.Name == "" {
		return errors.New("name: must not be empty")
	}
	switch r.Match {
	case "", MatchAnySpan, MatchSameSpan:
	default:
		return fmt.Errorf("match: unknown match mode %q (want %s or %s)", r.Match, MatchAnySpan, MatchSameSpan)
	}
	if r.Match != "" && len(r.Conditions) == 0 {
		return errors.New("match: needs conditions (a rule without conditions matches every trace)")
	}
	for j, c := range r.Conditions {
		if _, err := parseSpanConditions([]string{c}, ottl.SilentError); err != nil {
			return fmt.Errorf("conditions::%d: %w", j, err)
		}
	}
	return nil
}

// ValidateRules checks a rule list as a whole: at least one rule and unique
// names. Each entry's own Validate checks the rest.
func ValidateRules(rs []RuleConfig) error {
	if len(rs) == 0 {
		return errors.New("rules: at least one rule is required")
	}
	return uniqueNames("rules", len(rs), func(i int) string { return rs[i].Name })
}

// RulePolicies returns the rules' samplers as policies named after their
// rules: what a budget's classes name in rule mode.
func RulePolicies(rs []RuleConfig) []PolicyConfig {
	ps := make([]PolicyConfig, len(rs))
	for i := range rs {
		ps[i] = rs[i].Sampler.policy(rs[i].Name)
	}
	return ps
}

// WithRules puts the engine in rule mode: rs, which must have passed
// ValidateRules, replace the policy list, which must then be empty. The
// rules' samplers are built as policies named after their rules, so that
// the budget, sampling.rule and the metrics name the rule.
func WithRules(rs []RuleConfig) Option {
	return func(o *engineOptions) { o.rules = rs }
}

// matcher is a compiled rule's conditions.
type matcher struct {
	conds    []*ottl.ConditionSequence[*ottlspan.TransformContext]
	sameSpan bool
}

func newMatcher(r *RuleConfig) (matcher, error) {
	m := matcher{sameSpan: r.Match == MatchSameSpan}
	for j, c := range r.Conditions {
		// Silent: a condition that fails to evaluate on a span is false
		// for that span, as in contrib.
		cs, err := parseSpanConditions([]string{c}, ottl.SilentError)
		if err != nil {
			return matcher{}, fmt.Errorf("conditions::%d: %w", j, err)
		}
		m.conds = append(m.conds, cs)
	}
	return m, nil
}

// matches reports whether t satisfies the conditions. A rule with
// conditions matches nothing without the trace's spans.
func (m *matcher) matches(t *Trace) bool {
	if len(m.conds) == 0 {
		return true
	}
	if !t.HasSpans {
		return false
	}
	if m.sameSpan {
		return eachSpan(t.Spans, func(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, sp ptrace.Span) bool {
			for _, c := range m.conds {
				if !holds(c, rs, ss, sp) {
					return false
				}
			}
			return true
		})
	}
	for _, c := range m.conds {
		if !eachSpan(t.Spans, func(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, sp ptrace.Span) bool {
			return holds(c, rs, ss, sp)
		}) {
			return false
		}
	}
	return true
}

// holds evaluates c on one span; an evaluation error is false.
func holds(c *ottl.ConditionSequence[*ottlspan.TransformContext], rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, sp ptrace.Span) bool {
	tCtx := ottlspan.NewTransformContext(rs, ss, sp)
	ok, err := c.Eval(context.Background(), tCtx)
	tCtx.Close()
	return err == nil && ok
}

// eachSpan reports whether f holds for some span of td.
func eachSpan(td ptrace.Traces, f func(ptrace.ResourceSpans, ptrace.ScopeSpans, ptrace.Span) bool) bool {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				if f(rs, ss, spans.At(k)) {
					return true
				}
			}
		}
	}
	return false
}

// newMatchers compiles the rules' conditions into e and reports whether
// any rule has conditions (the engine then needs the spans).
func (e *Engine) newMatchers(rs []RuleConfig) (bool, error) {
	needSpans := false
	for i := range rs {
		m, err := newMatcher(&rs[i])
		if err != nil {
			return false, fmt.Errorf("rules::%d: %w", i, err)
		}
		needSpans = needSpans || len(m.conds) > 0
		e.rules = append(e.rules, m)
	}
	return needSpans, nil
}

// decideRules is decide in rule mode: the first rule that matches t asks
// its sampler, whose answer is final. Sampled keeps the trace with the
// sampler's threshold (through the budget and the head threshold, as
// Engine.keep does); InvertSampled (an invert_match filter that found no
// match) keeps it with probability 1; any other answer drops it, naming
// the rule. No rule matching drops it, naming none. Samplers after the
// matching rule are not evaluated: they learn and charge nothing.
func (e *Engine) decideRules(t *Trace) Decision {
	for i := range e.rules {
		if !e.rules[i].matches(t) {
			continue
		}
		d := e.policies[i].Evaluate(t)
		switch d.Verdict {
		case Sampled:
			return e.keep(t, i, d.Threshold, d.rv)
		case InvertSampled:
			return e.keep(t, i, otelsampling.AlwaysSampleThreshold, 0)
		}
		return Decision{Verdict: NotSampled, Policy: e.names[i]}
	}
	return Decision{Verdict: NotSampled}
}
