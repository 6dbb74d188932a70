package sampling_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/tailsift/tailsift/sampling"
)

// The composing and stateful policies decoded from contrib-style YAML (the
// shapes of contrib's README and testdata/tail_sampling_config.yaml).
func TestComposingConfigValid(t *testing.T) {
	cfg, err := load(t, `
policies:
  - name: rate
    type: rate_limiting
    rate_limiting: {spans_per_second: 35, burst_capacity: 70}
  - name: rate-default-burst
    type: rate_limiting
    rate_limiting: {spans_per_second: 35}
  - name: bytes
    type: bytes_limiting
    bytes_limiting: {bytes_per_second: 1024000, burst_capacity: 2048000}
  - name: ottl
    type: ottl_condition
    ottl_condition:
      error_mode: ignore
      span:
        - attributes["test_attr_key_1"] == "test_attr_val_1"
        - attributes["test_attr_key_2"] != "test_attr_val_1"
      spanevent:
        - name != "test_span_event_name"
  - name: and
    type: and
    and:
      and_sub_policy:
        - name: slow
          type: latency
          latency: {threshold_ms: 5000}
        - name: not-ok
          type: not
          not:
            not_sub_policy:
              name: ok
              type: status_code
              status_code: {status_codes: [OK]}
  - name: drop
    type: drop
    drop:
      drop_sub_policy:
        - type: ottl_condition
          ottl_condition: {span: ['attributes["url.path"] == "/health"']}
  - name: composite
    type: composite
    composite:
      max_total_spans_per_second: 1000
      policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3]
      composite_sub_policy:
        - name: test-composite-policy-1
          type: latency
          latency: {threshold_ms: 5000}
        - name: test-composite-policy-2
          type: and
          and:
            and_sub_policy:
              - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
              - {name: half, type: probabilistic, probabilistic: {sampling_percentage: 50}}
        - name: test-composite-policy-3
          type: probabilistic
          probabilistic: {sampling_percentage: 100}
      rate_allocation:
        - {policy: test-composite-policy-1, percent: 50}
        - {policy: test-composite-policy-2, percent: 25}
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))

	want := []any{
		&sampling.RateLimitingConfig{SpansPerSecond: 35, BurstCapacity: 70, Mode: sampling.LimitConsistent},
		&sampling.RateLimitingConfig{SpansPerSecond: 35, Mode: sampling.LimitConsistent},
		&sampling.BytesLimitingConfig{BytesPerSecond: 1024000, BurstCapacity: 2048000, Mode: sampling.LimitConsistent},
		&sampling.OTTLConditionConfig{
			ErrorMode:           ottl.IgnoreError,
			SpanConditions:      []string{`attributes["test_attr_key_1"] == "test_attr_val_1"`, `attributes["test_attr_key_2"] != "test_attr_val_1"`},
			SpanEventConditions: []string{`name != "test_span_event_name"`},
		},
	}
	require.Len(t, cfg.Policies, 7)
	for i, w := range want {
		assert.Equal(t, w, cfg.Policies[i].Settings(), cfg.Policies[i].Name)
	}

	and := cfg.Policies[4].Settings().(*sampling.AndConfig)
	require.Len(t, and.SubPolicies, 2)
	assert.Equal(t, "slow", and.SubPolicies[0].Name)
	assert.Equal(t, &sampling.LatencyConfig{ThresholdMs: 5000}, and.SubPolicies[0].Settings())
	not := and.SubPolicies[1].Settings().(*sampling.NotConfig)
	assert.Equal(t, "ok", not.SubPolicy.Name)
	assert.Equal(t, &sampling.StatusCodeConfig{StatusCodes: []string{"OK"}}, not.SubPolicy.Settings())

	drop := cfg.Policies[5].Settings().(*sampling.DropConfig)
	require.Len(t, drop.SubPolicies, 1)
	assert.Equal(t, "drop_sub_policy::0", drop.SubPolicies[0].Name, "an unnamed sub-policy is named after its key")
	assert.Equal(t, "ottl_condition", drop.SubPolicies[0].Type)

	comp := cfg.Policies[6].Settings().(*sampling.CompositeConfig)
	assert.Equal(t, int64(1000), comp.MaxTotalSpansPerSecond)
	assert.Equal(t, []string{"test-composite-policy-1", "test-composite-policy-2", "test-composite-policy-3"}, comp.PolicyOrder)
	assert.Equal(t, []sampling.RateAllocationConfig{{Policy: "test-composite-policy-1", Percent: 50}, {Policy: "test-composite-policy-2", Percent: 25}}, comp.RateAllocation)
	require.Len(t, comp.SubPolicies, 3)
	assert.Equal(t, "and", comp.SubPolicies[1].Type)
	assert.Len(t, comp.SubPolicies[1].Settings().(*sampling.AndConfig).SubPolicies, 2)

	e, err := sampling.NewEngine(cfg.Policies)
	require.NoError(t, err)
	assert.True(t, e.NeedsSpans())
	assert.Equal(t, []string{"rate", "rate-default-burst", "bytes", "ottl", "and", "drop", "composite"}, e.Names())
}

// Ported from contrib's *_helper_test.go "unsupported sampling policy type"
// cases and extended: which types each composing policy accepts inside.
func TestComposingSubPolicyTypes(t *testing.T) {
	allowed := func(extra string) string {
		types := []string{
			"always_sample", "boolean_attribute", "bytes_limiting", "latency",
			"numeric_attribute", "ottl_condition", "probabilistic", "rate_limiting",
			"span_count", "status_code", "string_attribute", "trace_flags", "trace_state",
		}
		if extra != "" {
			types = append(types, extra)
		}
		slices.Sort(types)
		return strings.Join(types, ", ")
	}
	lat := latencyPolicy("lat", 1, 0)
	tests := []struct {
		name string
		cfg  sampling.PolicyConfig
		err  string
	}{
		{"and in and", andPolicy("a", andPolicy("inner", lat)), `and: and_sub_policy::0::type: "and" is not allowed here (allowed: ` + allowed("not") + `)`},
		{"drop in and", andPolicy("a", lat, dropPolicy("inner", lat)), `and: and_sub_policy::1::type: "drop" is not allowed here (allowed: ` + allowed("not") + `)`},
		{"not in not", notPolicy("n", notPolicy("inner", lat)), `not: not_sub_policy::type: "not" is not allowed here (allowed: ` + allowed("") + `)`},
		{"and in not", notPolicy("n", andPolicy("inner", lat)), `not: not_sub_policy::type: "and" is not allowed here (allowed: ` + allowed("") + `)`},
		{"drop in drop", dropPolicy("d", dropPolicy("inner", lat)), `drop: drop_sub_policy::0::type: "drop" is not allowed here (allowed: ` + allowed("not") + `)`},
		{"composite in composite", compositePolicy("c", 10, nil, compositePolicy("inner", 10, nil, lat)), `composite: composite_sub_policy::0::type: "composite" is not allowed here (allowed: ` + allowed("and") + `)`},
		{"not in composite", compositePolicy("c", 10, nil, notPolicy("inner", lat)), `composite: composite_sub_policy::0::type: "not" is not allowed here (allowed: ` + allowed("and") + `)`},
		{"not in and", andPolicy("a", notPolicy("inner", lat)), ""},
		{"not in drop", dropPolicy("d", notPolicy("inner", lat)), ""},
		{"and in composite", compositePolicy("c", 10, nil, andPolicy("inner", lat)), ""},
		{"not in and in composite", compositePolicy("c", 10, nil, andPolicy("inner", notPolicy("n", lat))), ""},
		{"rate limiting in and", andPolicy("a", rateLimitingPolicy("r", 1, 0)), ""},
		{"ottl in not", notPolicy("n", ottlPolicy("o", []string{"IsRootSpan()"}, nil)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.err == "" {
				require.NoError(t, err)
				_, _, err = sampling.BuildPolicy(&tt.cfg)
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.err)
			_, _, err = sampling.BuildPolicy(&tt.cfg)
			require.EqualError(t, err, tt.err)
		})
	}
}

func TestComposingConfigInvalid(t *testing.T) {
	tests := []invalidConfig{
		{
			name:     "rate_limiting without a rate",
			yaml:     `policies: [{name: a, type: rate_limiting}]`,
			validate: `policies::0: rate_limiting: spans_per_second: must be positive`,
		},
		{
			name:     "rate_limiting negative rate",
			yaml:     `policies: [{name: a, type: rate_limiting, rate_limiting: {spans_per_second: -1}}]`,
			validate: `policies::0: rate_limiting: spans_per_second: must be positive`,
		},
		{
			name:     "rate_limiting negative burst",
			yaml:     `policies: [{name: a, type: rate_limiting, rate_limiting: {spans_per_second: 1, burst_capacity: -1}}]`,
			validate: `policies::0: rate_limiting: burst_capacity: must not be negative`,
		},
		{
			name:     "rate_limiting default burst overflows",
			yaml:     `policies: [{name: a, type: rate_limiting, rate_limiting: {spans_per_second: 9223372036854775807}}]`,
			validate: `policies::0: rate_limiting: spans_per_second: too large for the default burst_capacity (2×spans_per_second); set burst_capacity`,
		},
		{
			name:      "rate_limiting unknown key",
			yaml:      `policies: [{name: a, type: rate_limiting, rate_limiting: {spans_per_second: 1, burst: 2}}]`,
			unmarshal: decodeErr + `'policies[0]' rate_limiting: ` + decodeErr + `'sampling.RateLimitingConfig' has invalid keys: burst`,
		},
		{
			name:     "bytes_limiting without a rate",
			yaml:     `policies: [{name: a, type: bytes_limiting, bytes_limiting: {burst_capacity: 10}}]`,
			validate: `policies::0: bytes_limiting: bytes_per_second: must be positive`,
		},
		{
			name:     "bytes_limiting negative burst",
			yaml:     `policies: [{name: a, type: bytes_limiting, bytes_limiting: {bytes_per_second: 10, burst_capacity: -10}}]`,
			validate: `policies::0: bytes_limiting: burst_capacity: must not be negative`,
		},
		{
			name:     "and without sub-policies",
			yaml:     `policies: [{name: a, type: and}]`,
			validate: `policies::0: and: and_sub_policy: must list at least one policy`,
		},
		{
			name: "and with an invalid sub-policy",
			yaml: `
policies:
  - name: a
    type: and
    and:
      and_sub_policy:
        - {name: x, type: latency, latency: {threshold_ms: 1}}
        - {name: y, type: latency, latency: {threshold_ms: -1}}
`,
			validate: `policies::0: and: and_sub_policy::1::latency: threshold_ms: must not be negative`,
		},
		{
			name:     "and with a not without its sub-policy",
			yaml:     `policies: [{name: a, type: and, and: {and_sub_policy: [{name: n, type: not}]}}]`,
			validate: `policies::0: and: and_sub_policy::0::not: not_sub_policy: missing`,
		},
		{
			name:     "and with a nested invalid policy",
			yaml:     `policies: [{name: a, type: and, and: {and_sub_policy: [{name: n, type: not, not: {not_sub_policy: {name: s, type: status_code, status_code: {status_codes: [BAD]}}}}]}}]`,
			validate: `policies::0: and: and_sub_policy::0::not: not_sub_policy::status_code: status_codes::0: unknown status code "BAD" (want OK, ERROR or UNSET)`,
		},
		{
			name:      "and with a sub-policy of unknown type",
			yaml:      `policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: latncy}]}}]`,
			unmarshal: decodeErr + `'policies[0]' and: ` + decodeErr + `'and_sub_policy[0]' type: unknown policy type "latncy" (known: ` + knownTypes() + `)`,
		},
		{
			name:      "and with a sub-policy without type",
			yaml:      `policies: [{name: a, type: and, and: {and_sub_policy: [{name: x}]}}]`,
			unmarshal: decodeErr + `'policies[0]' and: ` + decodeErr + `'and_sub_policy[0]' type: missing`,
		},
		{
			name:      "and with an unknown key in a sub-policy",
			yaml:      `policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: latency, latency: {threshold: 1}}]}}]`,
			unmarshal: decodeErr + `'policies[0]' and: ` + decodeErr + `'and_sub_policy[0]' latency: ` + decodeErr + `'sampling.LatencyConfig' has invalid keys: threshold`,
		},
		{
			name:     "and nested in and",
			yaml:     `policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: and, and: {and_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}]}}]}}]`,
			validate: `policies::0: and: and_sub_policy::0::type: "and" is not allowed here (allowed: always_sample, boolean_attribute, bytes_limiting, latency, not, numeric_attribute, ottl_condition, probabilistic, rate_limiting, span_count, status_code, string_attribute, trace_flags, trace_state)`,
		},
		{
			name:     "not without its sub-policy",
			yaml:     `policies: [{name: a, type: not, not: {}}]`,
			validate: `policies::0: not: not_sub_policy: missing`,
		},
		{
			name:     "not with an invalid sub-policy",
			yaml:     `policies: [{name: a, type: not, not: {not_sub_policy: {name: p, type: probabilistic, probabilistic: {sampling_percentage: 0}}}}]`,
			validate: `policies::0: not: not_sub_policy::probabilistic: sampling_percentage: must be in (0, 100], got 0`,
		},
		{
			name:      "not with a list",
			yaml:      `policies: [{name: a, type: not, not: {not_sub_policy: [{name: p, type: latency}]}}]`,
			unmarshal: decodeErr + `'policies[0]' not: ` + decodeErr + `'not_sub_policy' expected a map or struct, got "slice"`,
		},
		{
			name:     "drop without sub-policies",
			yaml:     `policies: [{name: a, type: drop, drop: {drop_sub_policy: []}}]`,
			validate: `policies::0: drop: drop_sub_policy: must list at least one policy`,
		},
		{
			name:     "drop with composite inside",
			yaml:     `policies: [{name: a, type: drop, drop: {drop_sub_policy: [{name: c, type: composite}]}}]`,
			validate: `policies::0: drop: drop_sub_policy::0::type: "composite" is not allowed here (allowed: always_sample, boolean_attribute, bytes_limiting, latency, not, numeric_attribute, ottl_condition, probabilistic, rate_limiting, span_count, status_code, string_attribute, trace_flags, trace_state)`,
		},
		{
			name:     "composite without max total",
			yaml:     `policies: [{name: a, type: composite, composite: {composite_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}]}}]`,
			validate: `policies::0: composite: max_total_spans_per_second: must be positive`,
		},
		{
			name:     "composite without sub-policies",
			yaml:     `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10}}]`,
			validate: `policies::0: composite: composite_sub_policy: must list at least one policy`,
		},
		{
			name:     "composite with an invalid sub-policy",
			yaml:     `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}, {name: r, type: rate_limiting}]}}]`,
			validate: `policies::0: composite: composite_sub_policy::1::rate_limiting: spans_per_second: must be positive`,
		},
		{
			name:     "composite with an invalid policy inside its and",
			yaml:     `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: x, type: and, and: {and_sub_policy: [{name: l, type: latency, latency: {threshold_ms: -1}}]}}]}}]`,
			validate: `policies::0: composite: composite_sub_policy::0::and: and_sub_policy::0::latency: threshold_ms: must not be negative`,
		},
		{
			name:     "composite rate allocation for an unknown policy",
			yaml:     `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}], rate_allocation: [{policy: l, percent: 50}, {policy: m, percent: 50}]}}]`,
			validate: `policies::0: composite: rate_allocation::1::policy: "m" is not the name of a composite_sub_policy`,
		},
		{
			name:     "composite rate allocation above 100",
			yaml:     `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}], rate_allocation: [{policy: l, percent: 101}]}}]`,
			validate: `policies::0: composite: rate_allocation::0::percent: must be in [0, 100], got 101`,
		},
		{
			name:     "composite rate allocation negative",
			yaml:     `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}], rate_allocation: [{policy: l, percent: -1}]}}]`,
			validate: `policies::0: composite: rate_allocation::0::percent: must be in [0, 100], got -1`,
		},
		{
			name:      "composite rate allocation unknown key",
			yaml:      `policies: [{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: l, type: latency, latency: {threshold_ms: 1}}], rate_allocation: [{policy: l, percentage: 1}]}}]`,
			unmarshal: decodeErr + `'policies[0]' composite: ` + decodeErr + `'rate_allocation[0]' has invalid keys: percentage`,
		},
		{
			name:     "ottl without conditions",
			yaml:     `policies: [{name: a, type: ottl_condition, ottl_condition: {error_mode: ignore}}]`,
			validate: `policies::0: ottl_condition: span: set span and/or spanevent conditions (expected at least one OTTL condition to filter on)`,
		},
		{
			name:      "ottl unknown error mode",
			yaml:      `policies: [{name: a, type: ottl_condition, ottl_condition: {error_mode: loud, span: ['name == "x"']}}]`,
			unmarshal: decodeErr + `'policies[0]' ottl_condition: ` + decodeErr + `'error_mode' unknown error mode loud`,
		},
		{
			name:     "ottl span condition syntax error",
			yaml:     `policies: [{name: a, type: ottl_condition, ottl_condition: {span: ['name == "x"', 'attributes["x" == 1']}}]`,
			validate: "policies::0: ottl_condition: span::1: condition has invalid syntax at 1:11 near `[\"x\" == 1`: (expected <opcomparison> Value)",
		},
		{
			name:     "ottl spanevent unknown function",
			yaml:     `policies: [{name: a, type: ottl_condition, ottl_condition: {spanevent: ['Nope(name) == "x"']}}]`,
			validate: `policies::0: ottl_condition: spanevent::0: unable to parse OTTL condition "Nope(spanevent.name) == \"x\"": undefined function "Nope"`,
		},
		{
			name:     "ottl in and names the path",
			yaml:     `policies: [{name: a, type: and, and: {and_sub_policy: [{name: o, type: ottl_condition, ottl_condition: {span: ['IsRootSpan(']}}]}}]`,
			validate: `policies::0: and: and_sub_policy::0::ottl_condition: span::0: condition has invalid syntax at 1:12: (expected ")" Key*)`,
		},
	}
	checkInvalid(t, tests)
}
