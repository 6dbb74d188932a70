package sampling_test

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/sampling"
)

// testConfig holds a policy list the way the processor's config does.
type testConfig struct {
	Policies []sampling.PolicyConfig `mapstructure:"policies"`
}

func (c *testConfig) Validate() error { return sampling.ValidatePolicies(c.Policies) }

// load unmarshals a YAML snippet as the collector does: into a confmap.Conf,
// then into the config struct.
func load(t *testing.T, snippet string) (*testConfig, error) {
	t.Helper()
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(snippet), &raw))
	conf := confmap.NewFromStringMap(raw)
	var cfg testConfig
	return &cfg, conf.Unmarshal(&cfg)
}

func TestConfigValid(t *testing.T) {
	cfg, err := load(t, `
policies:
  - name: errors
    type: status_code
    status_code:
      status_codes: [ERROR, UNSET]
  - name: slow
    type: latency
    latency:
      threshold_ms: 500
      upper_threshold_ms: 5000
  - name: slow-only-upper
    type: latency
    latency: {upper_threshold_ms: 20}
  - name: sample
    type: probabilistic
    probabilistic:
      sampling_percentage: 12.5
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	require.Len(t, cfg.Policies, 4)

	want := []struct {
		name, typ string
		settings  any
	}{
		{"errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR", "UNSET"}}},
		{"slow", "latency", &sampling.LatencyConfig{ThresholdMs: 500, UpperThresholdMs: 5000}},
		{"slow-only-upper", "latency", &sampling.LatencyConfig{UpperThresholdMs: 20}},
		{"sample", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 12.5}},
	}
	for i, w := range want {
		p := &cfg.Policies[i]
		assert.Equal(t, w.name, p.Name)
		assert.Equal(t, w.typ, p.Type)
		assert.Equal(t, w.settings, p.Settings())
	}

	e, err := sampling.NewEngine(cfg.Policies)
	require.NoError(t, err)
	assert.Equal(t, []string{"errors", "slow", "slow-only-upper", "sample"}, e.Names())
	tr := traceWith(traceID(1<<56-1), "")
	tr.StatusMask = sampling.StatusOKBit
	tr.Start, tr.End = 0, 600*ms
	d := e.Decide(tr)
	assert.Equal(t, "slow", d.Policy)
	tr.End = 6000 * ms
	d = e.Decide(tr)
	assert.Equal(t, "sample", d.Policy)
	assert.Equal(t, probTh(t, 0.125), d.Threshold)
}

func TestConfigTypes(t *testing.T) {
	types := sampling.Types()
	assert.IsNonDecreasing(t, types)
	assert.Subset(t, types, []string{
		"adaptive", "always_sample", "and", "boolean_attribute", "bytes_limiting", "composite", "drop", "dynamic",
		"latency", "not", "numeric_attribute", "ottl_condition", "probabilistic", "rate_limiting",
		"span_count", "status_code", "string_attribute", "trace_flags", "trace_state",
	})
}

func TestConfigDefaults(t *testing.T) {
	// A policy without its block gets the type's defaults, which Validate
	// then refuses where they cannot work.
	cfg, err := load(t, `policies: [{name: a, type: latency}, {name: b, type: probabilistic, probabilistic: {}}]`)
	require.NoError(t, err)
	assert.Equal(t, &sampling.LatencyConfig{}, cfg.Policies[0].Settings())
	assert.Equal(t, &sampling.ProbabilisticConfig{}, cfg.Policies[1].Settings())

	// NewPolicyConfig with nil settings: Validate fills the defaults in.
	p := sampling.NewPolicyConfig("s", "status_code", nil)
	assert.Nil(t, p.Settings())
	require.EqualError(t, p.Validate(), "status_code: status_codes: must list at least one of OK, ERROR, UNSET")
	assert.Equal(t, &sampling.StatusCodeConfig{}, p.Settings())

	p = sampling.NewPolicyConfig("s", "nope", nil)
	require.EqualError(t, p.Validate(), `type: unknown policy type "nope" (known: `+knownTypes()+`)`)
	assert.Nil(t, p.Settings())
}

// knownTypes is the list unknown-type errors give.
func knownTypes() string { return strings.Join(sampling.Types(), ", ") }

const decodeErr = "decoding failed due to the following error(s):\n\n"

// invalidConfig is a configuration that must fail, and how.
type invalidConfig struct {
	name string
	yaml string
	// unmarshal is the error of conf.Unmarshal; when empty, Unmarshal must
	// succeed and validate is the error of confmap.Validate, the
	// collector's config validation.
	unmarshal string
	validate  string
}

// checkInvalid loads each configuration and requires its exact error.
func checkInvalid(t *testing.T, tests []invalidConfig) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.yaml)
			if tt.unmarshal != "" {
				require.EqualError(t, err, tt.unmarshal)
				return
			}
			require.NoError(t, err)
			require.EqualError(t, confmap.Validate(cfg), tt.validate)
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []invalidConfig{
		{
			name:      "unknown type",
			yaml:      `policies: [{name: a, type: nope}]`,
			unmarshal: decodeErr + `'policies[0]' type: unknown policy type "nope" (known: ` + knownTypes() + `)`,
		},
		{
			name:      "unknown type in second entry",
			yaml:      `policies: [{name: a, type: latency, latency: {threshold_ms: 1}}, {name: b, type: Latency}]`,
			unmarshal: decodeErr + `'policies[1]' type: unknown policy type "Latency" (known: ` + knownTypes() + `)`,
		},
		{
			name:      "missing type",
			yaml:      `policies: [{name: a}]`,
			unmarshal: decodeErr + `'policies[0]' type: missing`,
		},
		{
			// The block is reported as an unknown key before the missing type.
			name:      "missing type with a type block",
			yaml:      `policies: [{name: a, latency: {threshold_ms: 5}}]`,
			unmarshal: decodeErr + `'policies[0]' type: missing`,
		},
		{
			name:      "type that is not a string",
			yaml:      `policies: [{name: a, type: 5}]`,
			unmarshal: decodeErr + `'policies[0]' type: must be a string, got 5`,
		},
		{
			name:      "unknown key",
			yaml:      `policies: [{name: a, type: latency, latency: {threshold_ms: 1}, threshold_ms: 1}]`,
			unmarshal: decodeErr + `'policies[0]' unknown key "threshold_ms" (a policy has name, type and a block named after its type)`,
		},
		{
			name:      "block of another type",
			yaml:      `policies: [{name: a, type: latency, status_code: {status_codes: [ERROR]}}]`,
			unmarshal: decodeErr + `'policies[0]' unknown key "status_code" (a policy has name, type and a block named after its type)`,
		},
		{
			// A block that is not a mapping was read as an empty one: a
			// latency policy of threshold 0, which keeps every trace.
			name:      "block that is a list",
			yaml:      `policies: [{name: a, type: latency, latency: [{threshold_ms: 60000}]}]`,
			unmarshal: decodeErr + `'policies[0]' latency: must be a mapping of settings, got []interface {} ([map[threshold_ms:60000]])`,
		},
		{
			name:      "block that is a number",
			yaml:      `policies: [{name: a, type: latency, latency: 60000}]`,
			unmarshal: decodeErr + `'policies[0]' latency: must be a mapping of settings, got int (60000)`,
		},
		{
			name:      "unknown key in block",
			yaml:      `policies: [{name: a, type: latency, latency: {threshold_ms: 1, upper_ms: 2}}]`,
			unmarshal: decodeErr + `'policies[0]' latency: ` + decodeErr + `'sampling.LatencyConfig' has invalid keys: upper_ms`,
		},
		{
			name:      "wrong value type in block",
			yaml:      `policies: [{name: a, type: latency, latency: {threshold_ms: soon}}]`,
			unmarshal: decodeErr + `'policies[0]' latency: ` + decodeErr + `'threshold_ms' expected type 'int64', got unconvertible type 'string'`,
		},
		{
			name:     "bad status code",
			yaml:     `policies: [{name: a, type: status_code, status_code: {status_codes: [BAD]}}]`,
			validate: `policies::0: status_code: status_codes::0: unknown status code "BAD" (want OK, ERROR or UNSET)`,
		},
		{
			name:     "lowercase status code",
			yaml:     `policies: [{name: a, type: status_code, status_code: {status_codes: [OK, error]}}]`,
			validate: `policies::0: status_code: status_codes::1: unknown status code "error" (want OK, ERROR or UNSET)`,
		},
		{
			name:     "no status codes",
			yaml:     `policies: [{name: a, type: status_code, status_code: {status_codes: []}}]`,
			validate: `policies::0: status_code: status_codes: must list at least one of OK, ERROR, UNSET`,
		},
		{
			name:     "negative threshold",
			yaml:     `policies: [{name: a, type: latency, latency: {threshold_ms: -1}}]`,
			validate: `policies::0: latency: threshold_ms: must not be negative`,
		},
		{
			name:     "negative upper threshold",
			yaml:     `policies: [{name: a, type: latency, latency: {threshold_ms: 1, upper_threshold_ms: -5}}]`,
			validate: `policies::0: latency: upper_threshold_ms: must not be negative`,
		},
		{
			name:     "upper below lower",
			yaml:     `policies: [{name: a, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 99}}]`,
			validate: `policies::0: latency: upper_threshold_ms: must not be below threshold_ms`,
		},
		{
			name:     "percentage 0",
			yaml:     `policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: 0}}]`,
			validate: `policies::0: probabilistic: sampling_percentage: must be in (0, 100], got 0`,
		},
		{
			name:     "percentage 101",
			yaml:     `policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: 101}}]`,
			validate: `policies::0: probabilistic: sampling_percentage: must be in (0, 100], got 101`,
		},
		{
			name:     "negative percentage",
			yaml:     `policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: -5}}]`,
			validate: `policies::0: probabilistic: sampling_percentage: must be in (0, 100], got -5`,
		},
		{
			name:     "percentage below the smallest threshold",
			yaml:     `policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: 1e-30}}]`,
			validate: `policies::0: probabilistic: sampling_percentage: sampling probability out of the range [1/MaxAdjustedCount, 1]`,
		},
		{
			name:     "percentage NaN",
			yaml:     `policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: .nan}}]`,
			validate: `policies::0: probabilistic: sampling_percentage: sampling probability out of the range [1/MaxAdjustedCount, 1]`,
		},
		{
			name:     "missing name",
			yaml:     `policies: [{type: latency, latency: {threshold_ms: 1}}]`,
			validate: `policies::0: name: must not be empty`,
		},
		{
			name: "duplicate names",
			yaml: `
policies:
  - {name: a, type: latency, latency: {threshold_ms: 1}}
  - {name: b, type: latency, latency: {threshold_ms: 2}}
  - {name: a, type: status_code, status_code: {status_codes: [OK]}}
`,
			validate: `policies::2::name: "a" is already used by policies::0`,
		},
		{
			name:     "empty list",
			yaml:     `policies: []`,
			validate: `policies: at least one policy is required`,
		},
		{
			name:     "no policies key",
			yaml:     `{}`,
			validate: `policies: at least one policy is required`,
		},
	}
	checkInvalid(t, tests)
}

func TestValidatePolicies(t *testing.T) {
	ok := latencyPolicy("a", 1, 0)
	tests := []struct {
		name string
		ps   []sampling.PolicyConfig
		err  string
	}{
		{"nil", nil, "policies: at least one policy is required"},
		{"empty", []sampling.PolicyConfig{}, "policies: at least one policy is required"},
		{"one", []sampling.PolicyConfig{ok}, ""},
		{"distinct", []sampling.PolicyConfig{ok, latencyPolicy("b", 1, 0)}, ""},
		{"duplicate", []sampling.PolicyConfig{ok, latencyPolicy("b", 1, 0), probPolicy("a", 1)}, `policies::2::name: "a" is already used by policies::0`},
		{"first duplicate reported", []sampling.PolicyConfig{ok, ok, latencyPolicy("b", 1, 0), latencyPolicy("b", 1, 0)}, `policies::1::name: "a" is already used by policies::0`},
		// Empty names are left to each entry's Validate.
		{"two empty names", []sampling.PolicyConfig{latencyPolicy("", 1, 0), latencyPolicy("", 1, 0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sampling.ValidatePolicies(tt.ps)
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.err)
			}
		})
	}
}

func TestProbabilisticConfigValidate(t *testing.T) {
	for _, pct := range []float64{100, 50, 0.0001, 1e-14} {
		c := sampling.ProbabilisticConfig{SamplingPercentage: pct}
		require.NoError(t, c.Validate(), pct)
	}
	for _, pct := range []float64{0, -1, 100.0001, math.Inf(1), math.NaN(), 1e-20} {
		c := sampling.ProbabilisticConfig{SamplingPercentage: pct}
		require.Error(t, c.Validate(), pct)
	}
}
