package sampling_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/tailsift/tailsift/sampling"
)

func TestFilterTypesRegistered(t *testing.T) {
	assert.Subset(t, sampling.Types(), []string{
		"always_sample", "boolean_attribute", "numeric_attribute", "span_count",
		"string_attribute", "trace_flags", "trace_state",
	})
}

func TestFilterConfigValid(t *testing.T) {
	// Keys and shapes as in contrib's README and testdata/config.yaml.
	cfg, err := load(t, `
policies:
  - name: everything
    type: always_sample
  - name: everything-explicit
    type: always_sample
    always_sample: {}
  - name: server-errors
    type: numeric_attribute
    numeric_attribute: {key: http.status_code, min_value: 500, max_value: 599}
  - name: not-small
    type: numeric_attribute
    numeric_attribute: {key: payload.size, min_value: 1024, invert_match: true}
  - name: at-most
    type: numeric_attribute
    numeric_attribute: {key: retries, max_value: -1}
  - name: checkout
    type: string_attribute
    string_attribute: {key: service.name, values: [checkout, payment]}
  - name: not-health
    type: string_attribute
    string_attribute:
      key: http.route
      values: ['^/health', '^/ready$']
      enabled_regex_matching: true
      cache_max_size: 500
      invert_match: true
  - name: debug
    type: boolean_attribute
    boolean_attribute: {key: app.debug, value: true}
  - name: not-synthetic
    type: boolean_attribute
    boolean_attribute: {key: synthetic, value: true, invert_match: true}
  - name: tenant
    type: trace_state
    trace_state: {key: tenant@vendor, values: [acme, globex]}
  - name: head-sampled
    type: trace_flags
  - name: big
    type: span_count
    span_count: {min_spans: 2}
  - name: mid
    type: span_count
    span_count: {min_spans: 10, max_spans: 100}
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))

	want := []struct {
		name, typ string
		settings  any
	}{
		{"everything", "always_sample", &sampling.AlwaysSampleConfig{}},
		{"everything-explicit", "always_sample", &sampling.AlwaysSampleConfig{}},
		{"server-errors", "numeric_attribute", &sampling.NumericAttributeConfig{Key: "http.status_code", MinValue: 500, MaxValue: 599}},
		{"not-small", "numeric_attribute", &sampling.NumericAttributeConfig{Key: "payload.size", MinValue: 1024, InvertMatch: true}},
		{"at-most", "numeric_attribute", &sampling.NumericAttributeConfig{Key: "retries", MaxValue: -1}},
		{"checkout", "string_attribute", &sampling.StringAttributeConfig{Key: "service.name", Values: []string{"checkout", "payment"}}},
		{"not-health", "string_attribute", &sampling.StringAttributeConfig{
			Key: "http.route", Values: []string{"^/health", "^/ready$"}, EnabledRegexMatching: true, CacheMaxSize: 500, InvertMatch: true,
		}},
		{"debug", "boolean_attribute", &sampling.BooleanAttributeConfig{Key: "app.debug", Value: true}},
		{"not-synthetic", "boolean_attribute", &sampling.BooleanAttributeConfig{Key: "synthetic", Value: true, InvertMatch: true}},
		{"tenant", "trace_state", &sampling.TraceStateConfig{Key: "tenant@vendor", Values: []string{"acme", "globex"}}},
		{"head-sampled", "trace_flags", &sampling.TraceFlagsConfig{}},
		{"big", "span_count", &sampling.SpanCountConfig{MinSpans: 2}},
		{"mid", "span_count", &sampling.SpanCountConfig{MinSpans: 10, MaxSpans: 100}},
	}
	require.Len(t, cfg.Policies, len(want))
	for i, w := range want {
		p := &cfg.Policies[i]
		assert.Equal(t, w.name, p.Name)
		assert.Equal(t, w.typ, p.Type)
		assert.Equal(t, w.settings, p.Settings(), w.name)
	}
	e, err := sampling.NewEngine(cfg.Policies)
	require.NoError(t, err)
	assert.Len(t, e.Names(), len(want))
}

func TestFilterConfigDefaults(t *testing.T) {
	// Every key defaults to its zero value, as in contrib; Validate then
	// refuses the defaults that cannot work.
	tests := []struct {
		typ      string
		settings any
		validate string
	}{
		{"always_sample", &sampling.AlwaysSampleConfig{}, ""},
		{"trace_flags", &sampling.TraceFlagsConfig{}, ""},
		{"numeric_attribute", &sampling.NumericAttributeConfig{}, "numeric_attribute: key: must not be empty"},
		{"string_attribute", &sampling.StringAttributeConfig{}, "string_attribute: key: must not be empty"},
		{"boolean_attribute", &sampling.BooleanAttributeConfig{}, "boolean_attribute: key: must not be empty"},
		{"trace_state", &sampling.TraceStateConfig{}, "trace_state: key: must not be empty"},
		{"span_count", &sampling.SpanCountConfig{}, "span_count: min_spans: set min_spans or max_spans"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			cfg, err := load(t, `policies: [{name: a, type: `+tt.typ+`}]`)
			require.NoError(t, err)
			assert.Equal(t, tt.settings, cfg.Policies[0].Settings())

			p := sampling.NewPolicyConfig("a", tt.typ, nil)
			if tt.validate == "" {
				require.NoError(t, p.Validate())
			} else {
				require.EqualError(t, p.Validate(), tt.validate)
			}
			assert.Equal(t, tt.settings, p.Settings())
		})
	}
}

func TestFilterConfigInvalid(t *testing.T) {
	tests := []invalidConfig{
		{
			name:      "always_sample takes no settings",
			yaml:      `policies: [{name: a, type: always_sample, always_sample: {rate: 1}}]`,
			unmarshal: decodeErr + `'policies[0]' always_sample: ` + decodeErr + `'sampling.AlwaysSampleConfig' has invalid keys: rate`,
		},
		{
			name:      "trace_flags takes no settings",
			yaml:      `policies: [{name: a, type: trace_flags, trace_flags: {sampled: true}}]`,
			unmarshal: decodeErr + `'policies[0]' trace_flags: ` + decodeErr + `'sampling.TraceFlagsConfig' has invalid keys: sampled`,
		},
		{
			name:      "numeric: unknown key",
			yaml:      `policies: [{name: a, type: numeric_attribute, numeric_attribute: {key: k, min: 1}}]`,
			unmarshal: decodeErr + `'policies[0]' numeric_attribute: ` + decodeErr + `'sampling.NumericAttributeConfig' has invalid keys: min`,
		},
		{
			name:     "numeric: no key",
			yaml:     `policies: [{name: a, type: numeric_attribute, numeric_attribute: {min_value: 1}}]`,
			validate: `policies::0: numeric_attribute: key: must not be empty`,
		},
		{
			name:     "numeric: no bound",
			yaml:     `policies: [{name: a, type: numeric_attribute, numeric_attribute: {key: k}}]`,
			validate: `policies::0: numeric_attribute: min_value: set min_value or max_value (0 means unset)`,
		},
		{
			name:     "numeric: explicit zero bounds",
			yaml:     `policies: [{name: a, type: numeric_attribute, numeric_attribute: {key: k, min_value: 0, max_value: 0, invert_match: true}}]`,
			validate: `policies::0: numeric_attribute: min_value: set min_value or max_value (0 means unset)`,
		},
		{
			name:     "numeric: max below min",
			yaml:     `policies: [{name: a, type: numeric_attribute, numeric_attribute: {key: k, min_value: 500, max_value: 400}}]`,
			validate: `policies::0: numeric_attribute: max_value: must not be below min_value`,
		},
		{
			name:      "string: values not a list",
			yaml:      `policies: [{name: a, type: string_attribute, string_attribute: {key: k, values: {a: b}}}]`,
			unmarshal: decodeErr + `'policies[0]' string_attribute: ` + decodeErr + `'values' source data must be an array or slice, got map`,
		},
		{
			name:      "string: unknown key",
			yaml:      `policies: [{name: a, type: string_attribute, string_attribute: {key: k, values: [v], regex: true}}]`,
			unmarshal: decodeErr + `'policies[0]' string_attribute: ` + decodeErr + `'sampling.StringAttributeConfig' has invalid keys: regex`,
		},
		{
			name:     "string: no key",
			yaml:     `policies: [{name: a, type: string_attribute, string_attribute: {values: [v]}}]`,
			validate: `policies::0: string_attribute: key: must not be empty`,
		},
		{
			name:     "string: no values",
			yaml:     `policies: [{name: a, type: string_attribute, string_attribute: {key: k}}]`,
			validate: `policies::0: string_attribute: values: must not be empty`,
		},
		{
			name:     "string: empty value",
			yaml:     `policies: [{name: a, type: string_attribute, string_attribute: {key: k, values: [v, ""]}}]`,
			validate: `policies::0: string_attribute: values::1: must not be empty (an empty value never matches)`,
		},
		{
			name:     "string: bad regex",
			yaml:     `policies: [{name: a, type: string_attribute, string_attribute: {key: k, values: [ok, '(a'], enabled_regex_matching: true}}]`,
			validate: "policies::0: string_attribute: values::1: invalid regex `(a`: error parsing regexp: missing closing ): `(a`",
		},
		{
			name:     "boolean: no key",
			yaml:     `policies: [{name: a, type: boolean_attribute, boolean_attribute: {value: true}}]`,
			validate: `policies::0: boolean_attribute: key: must not be empty`,
		},
		{
			name:      "boolean: value not a boolean",
			yaml:      `policies: [{name: a, type: boolean_attribute, boolean_attribute: {key: k, value: maybe}}]`,
			unmarshal: decodeErr + `'policies[0]' boolean_attribute: ` + decodeErr + `'value' expected type 'bool', got unconvertible type 'string'`,
		},
		{
			name:     "trace_state: no key",
			yaml:     `policies: [{name: a, type: trace_state, trace_state: {values: [v]}}]`,
			validate: `policies::0: trace_state: key: must not be empty`,
		},
		{
			name:     "trace_state: invalid key",
			yaml:     `policies: [{name: a, type: trace_state, trace_state: {key: Vendor, values: [v]}}]`,
			validate: `policies::0: trace_state: key: "Vendor" is not a valid tracestate key`,
		},
		{
			name:     "trace_state: no values",
			yaml:     `policies: [{name: a, type: trace_state, trace_state: {key: k, values: []}}]`,
			validate: `policies::0: trace_state: values: must not be empty`,
		},
		{
			name:     "trace_state: empty value",
			yaml:     `policies: [{name: a, type: trace_state, trace_state: {key: k, values: [""]}}]`,
			validate: `policies::0: trace_state: values::0: must not be empty`,
		},
		{
			name:     "trace_state: invalid value",
			yaml:     `policies: [{name: a, type: trace_state, trace_state: {key: k, values: [ok, "a=b"]}}]`,
			validate: `policies::0: trace_state: values::1: "a=b" is not a valid tracestate value`,
		},
		{
			name:     "trace_state: trailing space",
			yaml:     `policies: [{name: a, type: trace_state, trace_state: {key: k, values: ["v "]}}]`,
			validate: `policies::0: trace_state: values::0: "v " is not a valid tracestate value`,
		},
		{
			// contrib's int32 would wrap this to a negative count.
			name:     "span_count: min_spans beyond int32 is kept whole",
			yaml:     `policies: [{name: a, type: span_count, span_count: {min_spans: 4294967297, max_spans: 2}}]`,
			validate: `policies::0: span_count: max_spans: must not be below min_spans (0 means no upper bound)`,
		},
		{
			name:     "span_count: negative min",
			yaml:     `policies: [{name: a, type: span_count, span_count: {min_spans: -1}}]`,
			validate: `policies::0: span_count: min_spans: must not be negative`,
		},
		{
			name:     "span_count: negative max",
			yaml:     `policies: [{name: a, type: span_count, span_count: {min_spans: 1, max_spans: -1}}]`,
			validate: `policies::0: span_count: max_spans: must not be negative`,
		},
		{
			name:     "span_count: max below min",
			yaml:     `policies: [{name: a, type: span_count, span_count: {min_spans: 10, max_spans: 5}}]`,
			validate: `policies::0: span_count: max_spans: must not be below min_spans (0 means no upper bound)`,
		},
		{
			name:     "span_count: no bound",
			yaml:     `policies: [{name: a, type: span_count, span_count: {}}]`,
			validate: `policies::0: span_count: min_spans: set min_spans or max_spans`,
		},
	}
	checkInvalid(t, tests)
}

func TestTraceStateConfigKeys(t *testing.T) {
	for _, key := range []string{"k", "vendor", "a*b/c_d-e", "tenant@vendor", "1tenant@v", "t@" + "abcdefghijklmn"} {
		c := sampling.TraceStateConfig{Key: key, Values: []string{"v"}}
		assert.NoError(t, c.Validate(), key)
	}
	for _, key := range []string{"K", "1k", "k k", "@vendor", "t@", "t@1v", "t@v@w", "t@" + "abcdefghijklmno", "é"} {
		c := sampling.TraceStateConfig{Key: key, Values: []string{"v"}}
		assert.EqualError(t, c.Validate(), `key: "`+key+`" is not a valid tracestate key`, key)
	}
}
