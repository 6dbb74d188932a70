package tailsiftprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/internal/statuspage"
)

// TestStatusPageCountsEveryDecision: the status page counts the decisions
// by policy once per shard cycle (Recorder.CountDecided), not at each
// decision; a trace decided early (max_spans), at its quiet time, or by the
// shutdown flush is on the page as in traces_decided, by policy and
// outcome.
func TestStatusPageCountsEveryDecision(t *testing.T) {
	cfg := testConfig()
	cfg.Completion.MaxSpans = 4
	h := newHarness(t, cfg, nil)
	var g statuspage.Registry
	g.Add(h.p.status)

	h.send(append(errorTrace(1), spanSpec{Trace: 1, Span: 4, Parent: 1})...) // max_spans
	h.send(errorTrace(2)...)
	h.send(spanSpec{Trace: 3, Span: 1})
	h.advance(2 * time.Second) // quiet: 2 and 3
	h.send(errorTrace(4)...)
	h.send(spanSpec{Trace: 5, Span: 1})
	require.NoError(t, h.p.Shutdown(t.Context())) // shutdown: 4 and 5

	c := g.Snapshot(t0).Components[0]
	k := c.Counters
	assert.Equal(t, int64(5), k.TracesDecided)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_traces_decided"), k.TracesDecided)
	assert.Equal(t, int64(1), k.EarlyDecisions["max_spans"])
	assert.Equal(t, int64(2), k.EarlyDecisions["shutdown"])
	total := int64(0)
	for _, d := range c.Decisions {
		total += d.Traces
		assert.Equal(t, h.metric("otelcol_processor_tailsift_traces_decided",
			attribute.String("policy", d.Policy), attribute.String("decision", d.Decision)), d.Traces, "%s/%s", d.Policy, d.Decision)
	}
	assert.Equal(t, k.TracesDecided, total)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_spans_decided", attribute.String("decision", "keep")), k.SpansKept)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_spans_decided", attribute.String("decision", "drop")), k.SpansDropped)
}
