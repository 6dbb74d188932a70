package sampling_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// ArrivalMask holds the status bits of the top-level status_code policies
// with keep_on_arrival; a composing policy decides on the whole trace, so
// keep_on_arrival under it is refused rather than ignored.
func TestArrivalMask(t *testing.T) {
	status := func(onArrival bool, codes ...string) sampling.PolicyConfig {
		return sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: codes, KeepOnArrival: onArrival})
	}
	for _, tc := range []struct {
		name    string
		cfgs    []sampling.PolicyConfig
		want    uint8
		wantErr string
	}{
		{"off", []sampling.PolicyConfig{status(false, "ERROR")}, 0, ""},
		{"error", []sampling.PolicyConfig{status(true, "ERROR")}, sampling.StatusErrorBit, ""},
		{"two policies", []sampling.PolicyConfig{status(true, "ERROR"), status(false, "OK"), status(true, "UNSET")},
			sampling.StatusErrorBit | sampling.StatusUnsetBit, ""},
		{"under and", []sampling.PolicyConfig{sampling.NewPolicyConfig("both", "and", &sampling.AndConfig{
			SubPolicies: []sampling.PolicyConfig{status(true, "ERROR")},
		})}, 0, "keep_on_arrival: only a top-level status_code policy can keep on arrival (a composing policy decides on the whole trace)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := sampling.NewEngine(tc.cfgs)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, e.ArrivalMask())
		})
	}
}

// keep_on_arrival is read from the policy's YAML.
func TestKeepOnArrivalYAML(t *testing.T) {
	cfg, err := load(t, `policies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR], keep_on_arrival: true}}]`)
	require.NoError(t, err)
	e, err := sampling.NewEngine(cfg.Policies)
	require.NoError(t, err)
	assert.Equal(t, sampling.StatusErrorBit, e.ArrivalMask())
}
