package sampling_test

import (
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// Ported from contrib's not_test.go; the sub-policy is a fake with a fixed
// verdict, as contrib's mockEvaluator.
func TestNot(t *testing.T) {
	tests := []struct {
		name string
		sub  sampling.Decision
		want sampling.Decision
	}{
		{"sampled becomes not sampled", sampled, notSampled},
		// A refusal carries the set not would have kept: the complement
		// threshold on the reflected randomness (for the engine's union).
		{"sampled with a threshold becomes not sampled", sampling.SampledAt(probTh(t, 0.1)), sampling.Reflected(sampling.Decision{Threshold: complement(t, probTh(t, 0.1))})},
		{"not sampled becomes sampled, probability 1", notSampled, sampled},
		// Other verdicts bubble up unchanged (contrib's default case).
		{"invert sampled bubbles up", invertSampled, invertSampled},
		{"invert not sampled bubbles up", invertNotSampled, invertNotSampled},
		{"dropped bubbles up", dropped, dropped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sampling.NotOf(fixed(tt.sub)).Evaluate(&sampling.Trace{}))
		})
	}
}

// complement is the threshold of probability 1-p for th of probability p.
func complement(t *testing.T, th otelsampling.Threshold) otelsampling.Threshold {
	t.Helper()
	c, err := otelsampling.UnsignedToThreshold(otelsampling.MaxAdjustedCount - th.Unsigned())
	require.NoError(t, err)
	return c
}

func TestNotPolicy(t *testing.T) {
	// not status_code OK: keeps traces without an OK span.
	cfg := notPolicy("not-ok", statusPolicy("ok", "OK"))
	assert.Equal(t, sampling.Sampled, evalOn(t, cfg, traceOf(traceID(1), spanSpec{status: ptrace.StatusCodeError}), t0).Verdict)
	assert.Equal(t, sampling.NotSampled, evalOn(t, cfg, traceOf(traceID(1), spanSpec{status: ptrace.StatusCodeOk}), t0).Verdict)
	assert.Equal(t, sampling.NotSampled, evalOn(t, cfg, traceOf(traceID(1), spanSpec{status: ptrace.StatusCodeError}, spanSpec{status: ptrace.StatusCodeOk}), t0).Verdict)
}
