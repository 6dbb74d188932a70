package sampling_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// TestAndDrop (and_test.go) has the cases ported from contrib's
// drop_test.go that share their sub-policies with its and_test.go.

func TestDropVerdicts(t *testing.T) {
	tests := []struct {
		name string
		subs []sampling.Policy
		want sampling.Decision
	}{
		// TestDropEvaluatorStringInvertMatch: an invert_match filter with no
		// match counts as a match.
		{"invert sampled matches", []sampling.Policy{fixed(invertSampled), fixed(sampled)}, dropped},
		// TestDropEvaluatorStringInvertNotMatch
		{"invert not sampled does not", []sampling.Policy{fixed(invertNotSampled), fixed(sampled)}, notSampled},
		{"not sampled last", []sampling.Policy{fixed(sampled), fixed(notSampled)}, notSampled},
		{"sampled with a threshold matches", []sampling.Policy{fixed(sampling.SampledAt(probTh(t, 0.5)))}, dropped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sampling.DropOf(tt.subs...).Evaluate(&sampling.Trace{}))
		})
	}
	later := &counted{d: sampled}
	assert.Equal(t, notSampled, sampling.DropOf(fixed(notSampled), later).Evaluate(&sampling.Trace{}))
	assert.Zero(t, later.n.Load(), "evaluation stops at the first sub-policy that does not match")
}

func TestDropInEngine(t *testing.T) {
	// A drop policy wins over a policy that samples, whatever the order.
	e := newEngine(t,
		statusPolicy("errors", "ERROR"),
		dropPolicy("drop-noisy", attrIs("noisy", "noisy", "yes"), statusPolicy("err", "ERROR")),
	)
	noisy := traceOf(traceID(1), spanSpec{attrs: map[string]any{"noisy": "yes"}, status: ptrace.StatusCodeError})
	d := decide(t, e, noisy, t0)
	assert.Equal(t, sampling.Dropped, d.Verdict)
	assert.Equal(t, "drop-noisy", d.Policy)
	assert.False(t, d.Keep())

	quiet := traceOf(traceID(2), spanSpec{attrs: map[string]any{"noisy": "no"}, status: ptrace.StatusCodeError})
	d = decide(t, e, quiet, t0)
	assert.Equal(t, sampling.Sampled, d.Verdict)
	assert.Equal(t, "errors", d.Policy)
}
