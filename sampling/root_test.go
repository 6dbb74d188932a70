package sampling_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// consumerTrace is a trace whose root never arrived: an internal span and a
// consumer span ("process orders"), both with parents elsewhere.
func consumerTrace() ptrace.Traces {
	td := traceOf(traceID(9), spanSpec{endMs: 1}, spanSpec{endMs: 1})
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i, kind := range []ptrace.SpanKind{ptrace.SpanKindInternal, ptrace.SpanKindConsumer} {
		spans.At(i).SetParentSpanID(pcommon.SpanID{0xee, byte(i)})
		spans.At(i).SetKind(kind)
	}
	spans.At(1).SetName("process orders")
	return td
}

func TestRootSpanCondition(t *testing.T) {
	keyed := []sampling.PolicyConfig{adaptivePolicy(nil)}
	conds := []string{`kind == SPAN_KIND_CONSUMER`}
	require.NoError(t, sampling.ValidateRootSpanCondition(conds))

	without, err := sampling.NewEngine(keyed)
	require.NoError(t, err)
	assert.Zero(t, samplingtest.Summarize(t, without, consumerTrace(), t0).KeySet, "no root: no keys")

	with, err := sampling.NewEngine(keyed, sampling.WithRootSpanCondition(conds))
	require.NoError(t, err)
	sum := samplingtest.Summarize(t, with, consumerTrace(), t0)
	require.Equal(t, uint8(1), sum.KeySet, "the consumer span counts as the root")

	// Its keys are the consumer span's: the same as a trace whose true
	// root is that span.
	rooted := consumerTrace()
	spans := rooted.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.At(1).SetParentSpanID(pcommon.SpanID{})
	spans.At(0).SetParentSpanID(pcommon.SpanID{2})
	assert.Equal(t, samplingtest.Summarize(t, without, rooted, t0).Keys[0], sum.Keys[0])

	assert.ErrorContains(t, sampling.ValidateRootSpanCondition([]string{`kind == SPAN_KIND_CONSUMER`, `nonsense(`}), "root_span_condition::1: ")
}
