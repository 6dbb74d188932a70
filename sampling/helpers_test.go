package sampling_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

const ms = uint64(time.Millisecond)

func newEngine(t testing.TB, cfgs ...sampling.PolicyConfig) *sampling.Engine {
	t.Helper()
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	for i := range cfgs {
		require.NoError(t, cfgs[i].Validate())
	}
	e, err := sampling.NewEngine(cfgs)
	require.NoError(t, err)
	return e
}

func statusPolicy(name string, codes ...string) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "status_code", &sampling.StatusCodeConfig{StatusCodes: codes})
}

func latencyPolicy(name string, lower, upper int64) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "latency", &sampling.LatencyConfig{ThresholdMs: lower, UpperThresholdMs: upper})
}

func probPolicy(name string, pct float64) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: pct})
}

// traceID returns a trace ID whose randomness (low 56 bits) is rnd.
func traceID(rnd uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], 0x0123456789abcdef)
	binary.BigEndian.PutUint64(id[8:], rnd&(1<<56-1)|0xaa<<56)
	return id
}

func randomID(rng *rand.Rand) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], rng.Uint64())
	return id
}

func traceWith(id [16]byte, tracestate string) *sampling.Trace {
	t := &sampling.Trace{SpanCount: 1}
	t.SetIdentity(id, []byte(tracestate))
	return t
}

func th(t testing.TB, tvalue string) otelsampling.Threshold {
	t.Helper()
	v, err := otelsampling.TValueToThreshold(tvalue)
	require.NoError(t, err)
	return v
}

func probTh(t testing.TB, p float64) otelsampling.Threshold {
	t.Helper()
	v, err := otelsampling.ProbabilityToThreshold(p)
	require.NoError(t, err)
	return v
}
