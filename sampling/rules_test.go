package sampling_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

func ruleEngine(t testing.TB, rules ...sampling.RuleConfig) *sampling.Engine {
	t.Helper()
	for i := range rules {
		require.NoError(t, rules[i].Validate())
		require.NoError(t, rules[i].Sampler.Validate())
	}
	require.NoError(t, sampling.ValidateRules(rules))
	e, err := sampling.NewEngine(nil, sampling.WithRules(rules))
	require.NoError(t, err)
	return e
}

func rule(name string, conds []string, p sampling.PolicyConfig) sampling.RuleConfig {
	return sampling.NewRuleConfig(name, conds, p.Type, p.Settings())
}

func alwaysRule(name string, conds ...string) sampling.RuleConfig {
	return sampling.NewRuleConfig(name, conds, "always_sample", &sampling.AlwaysSampleConfig{})
}

// serviceTrace is a trace of service svc with one span per spec.
func serviceTrace(id [16]byte, svc string, specs ...spanSpec) ptrace.Traces {
	td := traceOf(id, specs...)
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("service.name", svc)
	return td
}

const (
	errCond      = `span.status.code == STATUS_CODE_ERROR`
	checkoutCond = `resource.attributes["service.name"] == "checkout"`
)

// TestRulesFirstMatch: the first rule whose conditions match decides, with
// its sampler's answer final; a trace no rule matches is dropped, naming
// no rule.
func TestRulesFirstMatch(t *testing.T) {
	errSpan := spanSpec{status: ptrace.StatusCodeError, endMs: 5}
	okSpan := spanSpec{status: ptrace.StatusCodeOk, endMs: 5}
	tests := []struct {
		name     string
		rules    []sampling.RuleConfig
		trace    ptrace.Traces
		keep     bool
		rule     string
		sampling float64 // probability of the kept trace
	}{
		{
			name:  "error rule first",
			rules: []sampling.RuleConfig{alwaysRule("errors", errCond), rule("checkout", []string{checkoutCond}, probPolicy("", 100)), alwaysRule("default")},
			trace: serviceTrace(traceID(1), "checkout", okSpan, errSpan),
			keep:  true, rule: "errors", sampling: 1,
		},
		{
			name:  "second rule",
			rules: []sampling.RuleConfig{alwaysRule("errors", errCond), rule("checkout", []string{checkoutCond}, probPolicy("", 50)), alwaysRule("default")},
			trace: serviceTrace(traceID(1), "checkout", okSpan),
			keep:  true, rule: "checkout", sampling: 0.5,
		},
		{
			name:  "catch-all",
			rules: []sampling.RuleConfig{alwaysRule("errors", errCond), alwaysRule("checkout", checkoutCond), rule("default", nil, probPolicy("", 25))},
			trace: serviceTrace(traceID(1), "cart", okSpan),
			keep:  true, rule: "default", sampling: 0.25,
		},
		{
			name:  "order decides: catch-all first swallows errors",
			rules: []sampling.RuleConfig{rule("default", nil, probPolicy("", 25)), alwaysRule("errors", errCond)},
			trace: serviceTrace(traceID(1), "cart", errSpan),
			keep:  true, rule: "default", sampling: 0.25,
		},
		{
			name:  "no rule matches: dropped",
			rules: []sampling.RuleConfig{alwaysRule("errors", errCond), alwaysRule("checkout", checkoutCond)},
			trace: serviceTrace(traceID(1), "cart", okSpan),
		},
		{
			// checkout's sampler (errors only) does not keep the trace;
			// the catch-all after it is not asked.
			name:  "matched rule's drop is final",
			rules: []sampling.RuleConfig{rule("checkout", []string{checkoutCond}, statusPolicy("", "ERROR")), alwaysRule("default")},
			trace: serviceTrace(traceID(1), "checkout", okSpan),
			rule:  "checkout",
		},
		{
			name:  "all conditions must hold (any span each)",
			rules: []sampling.RuleConfig{alwaysRule("checkout-errors", checkoutCond, errCond)},
			trace: serviceTrace(traceID(1), "checkout", okSpan),
		},
		{
			name:  "conditions on different spans: any_span",
			rules: []sampling.RuleConfig{alwaysRule("gold-errors", `span.attributes["tier"] == "gold"`, errCond)},
			trace: serviceTrace(traceID(1), "cart", spanSpec{attrs: map[string]any{"tier": "gold"}}, errSpan),
			keep:  true, rule: "gold-errors", sampling: 1,
		},
		{
			name: "conditions on different spans: same_span",
			rules: []sampling.RuleConfig{func() sampling.RuleConfig {
				r := alwaysRule("gold-errors", `span.attributes["tier"] == "gold"`, errCond)
				r.Match = sampling.MatchSameSpan
				return r
			}()},
			trace: serviceTrace(traceID(1), "cart", spanSpec{attrs: map[string]any{"tier": "gold"}}, errSpan),
		},
		{
			name:  "a condition that fails to evaluate is false",
			rules: []sampling.RuleConfig{alwaysRule("json", `ParseJSON(span.attributes["j"])["a"] == 1`), alwaysRule("default")},
			trace: serviceTrace(traceID(1), "cart", spanSpec{attrs: map[string]any{"j": "not json"}}),
			keep:  true, rule: "default", sampling: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ruleEngine(t, tt.rules...)
			tr := samplingtest.Summarize(t, e, tt.trace, t0)
			tr.SetIdentity(traceID(1<<56-1), nil) // the highest randomness: kept by any probability
			d := e.Decide(tr)
			assert.Equal(t, tt.keep, d.Keep())
			assert.Equal(t, tt.rule, d.Policy)
			if tt.keep {
				assert.Equal(t, probTh(t, tt.sampling), d.Threshold)
			}
		})
	}
}

// TestRulesLaterSamplersUntouched: the samplers of the rules after the
// one that matched learn and charge nothing: a rate_limiting catch-all
// keeps its token while the errors rule keeps error traces.
func TestRulesLaterSamplersUntouched(t *testing.T) {
	e := ruleEngine(t, alwaysRule("errors", errCond), rule("rest", nil, rateLimitingPolicy("", 1, 1)))
	errTrace := samplingtest.Summarize(t, e, serviceTrace(traceID(1), "a", spanSpec{status: ptrace.StatusCodeError}), t0)
	for range 3 {
		assert.Equal(t, "errors", e.Decide(errTrace).Policy)
	}
	ok := samplingtest.Summarize(t, e, serviceTrace(traceID(2), "a", spanSpec{}), t0)
	d := e.Decide(ok)
	require.True(t, d.Keep(), "the limiter still has its token")
	assert.Equal(t, "rest", d.Policy)
	assert.False(t, e.Decide(samplingtest.Summarize(t, e, serviceTrace(traceID(3), "a", spanSpec{}), t0)).Keep(), "and now it has not")
}

// TestRulesRedecide: a trace a rule dropped is kept on a later decision
// once a late error span makes the errors rule match (rescue).
func TestRulesRedecide(t *testing.T) {
	e := ruleEngine(t, alwaysRule("errors", errCond), rule("default", nil, probPolicy("", 1)))
	id := traceID(1 << 55) // randomness half way: a 1 % sampler drops it
	tr := samplingtest.Summarize(t, e, serviceTrace(id, "a", spanSpec{}), t0)
	require.False(t, e.Decide(tr).Keep())
	late := samplingtest.Summarize(t, e, serviceTrace(id, "a", spanSpec{}, spanSpec{status: ptrace.StatusCodeError}), t0)
	d := e.Redecide(late)
	assert.True(t, d.Keep())
	assert.Equal(t, "errors", d.Policy)
}

func TestRulesNeedsSpans(t *testing.T) {
	assert.False(t, ruleEngine(t, alwaysRule("all")).NeedsSpans(), "no conditions: no spans needed")
	assert.True(t, ruleEngine(t, alwaysRule("errors", errCond), alwaysRule("all")).NeedsSpans())

	// Without the spans, a rule with conditions matches nothing.
	e := ruleEngine(t, alwaysRule("errors", errCond))
	tr := samplingtest.Summarize(t, e, serviceTrace(traceID(1), "a", spanSpec{status: ptrace.StatusCodeError}), t0)
	tr.HasSpans = false
	assert.False(t, e.Decide(tr).Keep())
}

func TestRulesEngineErrors(t *testing.T) {
	_, err := sampling.NewEngine([]sampling.PolicyConfig{probPolicy("p", 1)}, sampling.WithRules([]sampling.RuleConfig{alwaysRule("a")}))
	require.EqualError(t, err, "rules: set rules or policies, not both")

	keep := sampling.NewRuleConfig("e", nil, "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}, KeepOnArrival: true})
	_, err = sampling.NewEngine(nil, sampling.WithRules([]sampling.RuleConfig{keep}))
	require.ErrorContains(t, err, "keep_on_arrival: not available in a rule")
}

type rulesConfig struct {
	Rules []sampling.RuleConfig `mapstructure:"rules"`
}

func loadRules(t *testing.T, snippet string) (*rulesConfig, error) {
	t.Helper()
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(snippet), &raw))
	var cfg rulesConfig
	return &cfg, confmap.NewFromStringMap(raw).Unmarshal(&cfg)
}

func TestRulesConfig(t *testing.T) {
	cfg, err := loadRules(t, `
rules:
  - name: errors
    conditions: ['span.status.code == STATUS_CODE_ERROR']
    sampler: {type: always_sample}
  - name: checkout
    conditions: ['resource.attributes["service.name"] == "checkout"', 'span.kind == SPAN_KIND_SERVER']
    match: same_span
    sampler: {type: probabilistic, probabilistic: {sampling_percentage: 10}}
  - name: default
    sampler: {type: probabilistic, probabilistic: {sampling_percentage: 1}}
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	require.NoError(t, sampling.ValidateRules(cfg.Rules))
	require.Len(t, cfg.Rules, 3)
	assert.Equal(t, sampling.MatchSameSpan, cfg.Rules[1].Match)
	assert.Equal(t, &sampling.ProbabilisticConfig{SamplingPercentage: 10}, cfg.Rules[1].Sampler.Settings())
	ps := sampling.RulePolicies(cfg.Rules)
	assert.Equal(t, []string{"errors", "checkout", "default"}, []string{ps[0].Name, ps[1].Name, ps[2].Name})
	e, err := sampling.NewEngine(nil, sampling.WithRules(cfg.Rules))
	require.NoError(t, err)
	assert.Len(t, e.Policies(), 3)
}

func TestRulesConfigInvalid(t *testing.T) {
	tests := []invalidConfig{
		{
			name:     "bad OTTL names rule and condition",
			yaml:     `rules: [{name: a, sampler: {type: always_sample}}, {name: b, conditions: ['span.status.code == 1', 'span.nope == 1'], sampler: {type: always_sample}}]`,
			validate: `rules::1: conditions::1: unable to parse OTTL condition "span.nope == 1"`,
		},
		{
			name:     "missing name",
			yaml:     `rules: [{sampler: {type: always_sample}}]`,
			validate: `rules::0: name: must not be empty`,
		},
		{
			name:     "unknown match",
			yaml:     `rules: [{name: a, conditions: ['span.name == "x"'], match: all, sampler: {type: always_sample}}]`,
			validate: `rules::0: match: unknown match mode "all" (want any_span or same_span)`,
		},
		{
			name:     "match without conditions",
			yaml:     `rules: [{name: a, match: same_span, sampler: {type: always_sample}}]`,
			validate: `rules::0: match: needs conditions (a rule without conditions matches every trace)`,
		},
		{
			name:     "missing sampler",
			yaml:     `rules: [{name: a}]`,
			validate: `rules::0::sampler: type: missing`,
		},
		{
			name:     "bad sampler settings",
			yaml:     `rules: [{name: a, sampler: {type: probabilistic, probabilistic: {sampling_percentage: 0}}}]`,
			validate: `rules::0::sampler: probabilistic: sampling_percentage: must be in (0, 100], got 0`,
		},
		{
			name:     "keep_on_arrival",
			yaml:     `rules: [{name: a, sampler: {type: status_code, status_code: {status_codes: [ERROR], keep_on_arrival: true}}}]`,
			validate: `rules::0::sampler: status_code: keep_on_arrival: not available in a rule (a rule decides on the whole trace, in order)`,
		},
		{
			name:      "unknown sampler type",
			yaml:      `rules: [{name: a, sampler: {type: nope}}]`,
			unmarshal: decodeErr + `'rules[0].sampler' type: unknown policy type "nope" (known: ` + knownTypes() + `)`,
		},
		{
			name:      "sampler with a name",
			yaml:      `rules: [{name: a, sampler: {name: b, type: always_sample}}]`,
			unmarshal: decodeErr + `'rules[0].sampler' unknown key "name" (a sampler takes its rule's name; it has type and a block named after its type)`,
		},
		{
			name:      "contrib's flat sampler",
			yaml:      `rules: [{name: a, sampler: {type: probabilistic, sampling_percentage: 10}}]`,
			unmarshal: decodeErr + `'rules[0].sampler' unknown key "sampling_percentage" (a policy has name, type and a block named after its type)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadRules(t, tt.yaml)
			if tt.unmarshal != "" {
				require.EqualError(t, err, tt.unmarshal)
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.validate)
		})
	}
	require.EqualError(t, sampling.ValidateRules(nil), "rules: at least one rule is required")
	require.EqualError(t, sampling.ValidateRules([]sampling.RuleConfig{alwaysRule("a"), alwaysRule("b"), alwaysRule("a")}),
		`rules::2::name: "a" is already used by rules::0`)
}

// TestStatisticalRules: in rule mode the adjusted counts of every rule's
// kept traces add up to the traces it matched, with head-sampled traffic,
// for a probabilistic and a (consistent) rate_limiting sampler behind an
// errors rule; the trace's threshold is its matched rule's sampler's.
func TestStatisticalRules(t *testing.T) {
	errTrace := serviceTrace(traceID(1), "cart", spanSpec{status: ptrace.StatusCodeError, endMs: 5})
	checkout := serviceTrace(traceID(1), "checkout", spanSpec{endMs: 5})
	search := serviceTrace(traceID(1), "search", spanSpec{endMs: 5})
	other := serviceTrace(traceID(1), "cart", spanSpec{endMs: 5})
	e := ruleEngine(t,
		alwaysRule("errors", errCond),
		rule("checkout", []string{checkoutCond}, probPolicy("", 10)),
		rule("search", []string{`resource.attributes["service.name"] == "search"`},
			sampling.NewPolicyConfig("", "rate_limiting", &sampling.RateLimitingConfig{SpansPerSecond: 100, Mode: sampling.LimitConsistent})),
		rule("default", nil, probPolicy("", 1)),
	)
	r := countRun{n: 200_000, perSec: 5000, heads: []string{"ot=th:8", ""}, classOf: func(rng *rand.Rand, tr *sampling.Trace) string {
		tr.HasSpans = true
		switch n := rng.IntN(100); {
		case n < 2:
			tr.Spans, tr.StatusMask = errTrace, sampling.StatusErrorBit
			return "errors"
		case n < 30:
			tr.Spans = checkout
			return "checkout"
		case n < 60:
			tr.Spans = search
			return "search"
		default:
			tr.Spans = other
			return "default"
		}
	}}
	res := r.run(t, e, 401)
	for _, g := range []string{"errors", "checkout", "search", "default"} {
		res.classes[g].check(t, g)
	}
	// search's limiter keeps about its rate: 100 spans/s of 1500 traces/s.
	searchKept := float64(res.classes["search"].kept) / res.secs
	assert.InDelta(t, 100, searchKept, 30, "search kept per second")
}

// TestRulesExplicitDrop: a not over always_sample keeps nothing, so the
// rule drops what it matches while later rules keep the rest (the health
// rule of docs/policies/rules.md).
func TestRulesExplicitDrop(t *testing.T) {
	cfg, err := loadRules(t, `
rules:
  - name: health
    conditions: ['span.attributes["http.route"] == "/healthz"']
    sampler: {type: not, not: {not_sub_policy: {name: all, type: always_sample}}}
  - name: default
    sampler: {type: always_sample}
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	e := ruleEngine(t, cfg.Rules...)
	health := samplingtest.Summarize(t, e, serviceTrace(traceID(1), "a", spanSpec{attrs: map[string]any{"http.route": "/healthz"}}), t0)
	d := e.Decide(health)
	assert.False(t, d.Keep())
	assert.Equal(t, "health", d.Policy)
	d = e.Decide(samplingtest.Summarize(t, e, serviceTrace(traceID(2), "a", spanSpec{attrs: map[string]any{"http.route": "/cart"}}), t0))
	assert.True(t, d.Keep())
	assert.Equal(t, "default", d.Policy)
}
