package sampling_test

import (
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// attrIs is an ottl_condition standing in for contrib's string_attribute
// filter on a span attribute.
func attrIs(name, key, value string) sampling.PolicyConfig {
	return ottlPolicy(name, []string{`attributes["` + key + `"] == "` + value + `"`}, nil)
}

// Ported from contrib's and_test.go and drop_test.go, which check the same
// sub-policies: string_attribute is an ottl_condition here. drop answers
// Dropped where and answers Sampled (every sub-policy matched).
func TestAndDrop(t *testing.T) {
	errorSpan := func(attrs map[string]any) ptrace.Traces {
		return traceOf(traceID(1), spanSpec{attrs: attrs, status: ptrace.StatusCodeError})
	}
	tests := []struct {
		name       string
		subs       []sampling.PolicyConfig
		td         ptrace.Traces
		matchesAll bool
	}{
		{
			name: "not sampled",
			subs: []sampling.PolicyConfig{attrIs("n1", "name", "value"), statusPolicy("n2", "ERROR")},
			td:   errorSpan(nil),
		},
		{
			name:       "all match",
			subs:       []sampling.PolicyConfig{attrIs("n1", "attribute_name", "attribute_value"), statusPolicy("n2", "ERROR")},
			td:         errorSpan(map[string]any{"attribute_name": "attribute_value"}),
			matchesAll: true,
		},
		{
			name: "second sub-policy does not match",
			subs: []sampling.PolicyConfig{attrIs("n1", "attribute_name", "attribute_value"), statusPolicy("n2", "OK")},
			td:   errorSpan(map[string]any{"attribute_name": "attribute_value"}),
		},
		{
			name:       "nested not",
			subs:       []sampling.PolicyConfig{notPolicy("n1", statusPolicy("ok", "OK")), statusPolicy("n2", "ERROR")},
			td:         errorSpan(nil),
			matchesAll: true,
		},
		{
			name:       "one sub-policy",
			subs:       []sampling.PolicyConfig{latencyPolicy("slow", 100, 0)},
			td:         traceOf(traceID(1), spanSpec{endMs: 101}),
			matchesAll: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAnd, wantDrop := sampling.NotSampled, sampling.NotSampled
			if tt.matchesAll {
				wantAnd, wantDrop = sampling.Sampled, sampling.Dropped
			}
			d := evalOn(t, andPolicy("and", tt.subs...), tt.td, t0)
			assert.Equal(t, wantAnd, d.Verdict, "and")
			assert.Equal(t, tt.matchesAll, d.Keep(), "and")
			assert.Equal(t, wantDrop, evalOn(t, dropPolicy("drop", tt.subs...), tt.td, t0).Verdict, "drop")
		})
	}
}

func TestAndVerdicts(t *testing.T) {
	half := sampling.SampledAt(probTh(t, 0.5))
	quarter := sampling.SampledAt(probTh(t, 0.25))
	tests := []struct {
		name string
		subs []sampling.Policy
		want sampling.Decision
	}{
		// TestAndEvaluatorStringInvertSampled: an invert_match filter that
		// found no match passes.
		{"invert sampled passes", []sampling.Policy{fixed(invertSampled), fixed(sampled)}, sampled},
		// TestAndEvaluatorStringInvertNotSampled
		{"invert not sampled fails", []sampling.Policy{fixed(invertNotSampled), fixed(sampled)}, notSampled},
		{"only invert sampled", []sampling.Policy{fixed(invertSampled)}, sampled},
		{"not sampled last", []sampling.Policy{fixed(sampled), fixed(notSampled)}, notSampled},
		// The strictest threshold: the trace passed every sub-policy.
		{"strictest threshold", []sampling.Policy{fixed(half), fixed(quarter), fixed(sampled)}, quarter},
		{"strictest threshold, any order", []sampling.Policy{fixed(quarter), fixed(half)}, quarter},
		// As contrib, only NotSampled and InvertNotSampled fail an and.
		{"dropped passes", []sampling.Policy{fixed(dropped), fixed(half)}, half},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sampling.AndOf(tt.subs...).Evaluate(&sampling.Trace{}))
		})
	}
}

func TestAndShortCircuits(t *testing.T) {
	// The first failing sub-policy ends the evaluation: a rate limiter
	// after a filter is charged only for the traces the filter passes.
	later := &counted{d: sampled}
	p := sampling.AndOf(fixed(notSampled), later)
	assert.Equal(t, notSampled, p.Evaluate(&sampling.Trace{}))
	assert.Zero(t, later.n.Load())

	e := newEngine(t, andPolicy("errors-limited", statusPolicy("errors", "ERROR"), rateLimitingPolicy("rl", 1, 1)))
	ok := traceOf(traceID(1), spanSpec{status: ptrace.StatusCodeOk})
	failed := traceOf(traceID(2), spanSpec{status: ptrace.StatusCodeError})
	assert.False(t, decide(t, e, ok, t0).Keep())
	assert.False(t, decide(t, e, ok, t0).Keep())
	assert.True(t, decide(t, e, failed, t0).Keep(), "the OK traces did not spend the token")
	assert.False(t, decide(t, e, failed, t0).Keep())
}

func TestAndProbabilistic(t *testing.T) {
	// and of probabilistic 50 % and 25 %: a trace passes iff it passes the
	// 25 % one, and is kept with that threshold.
	e := newEngine(t, andPolicy("and", probPolicy("half", 50), probPolicy("quarter", 25)))
	kept := traceWith(traceID(1<<56-1), "")
	d := e.Decide(kept)
	require.True(t, d.Keep())
	assert.Equal(t, probTh(t, 0.25), d.Threshold)
	middle := traceWith(traceID(5<<53), "") // passes 50 % only
	assert.False(t, e.Decide(middle).Keep())
	assert.Equal(t, otelsampling.AlwaysSampleThreshold, sampling.AndOf(fixed(sampled)).Evaluate(kept).Threshold)
}
