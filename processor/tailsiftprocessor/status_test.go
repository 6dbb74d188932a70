package tailsiftprocessor

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/internal/statuspage"
)

// TestStatusPageAgreesWithMetrics: what the status page shows of the
// processor's buffer is what its self-metrics count.
func TestStatusPageAgreesWithMetrics(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	var g statuspage.Registry
	g.Add(h.p.status)

	h.send(errorTrace(1)...)
	h.send(spanSpec{Trace: 2, Span: 1}, spanSpec{Trace: 3, Span: 1, Dur: 3 * time.Second}, spanSpec{Trace: 4, Span: 1})
	h.advance(2 * time.Second)
	h.send(spanSpec{Trace: 2, Span: 2, Parent: 1}, spanSpec{Trace: 1, Span: 4, Parent: 1}) // late: dropped, kept
	h.send(spanSpec{Trace: 5, Span: 1})                                                    // still buffered
	h.advance(0)

	c := g.Snapshot(t0).Components[0]
	assert.Equal(t, "processor", c.Kind)
	k := c.Counters
	assert.Equal(t, int64(9), k.SpansReceived)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_spans_received"), k.SpansReceived)
	assert.Equal(t, int64(4), k.TracesDecided)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_traces_decided"), k.TracesDecided)
	for _, d := range c.Decisions {
		assert.Equal(t, h.metric("otelcol_processor_tailsift_traces_decided",
			attribute.String("policy", d.Policy), attribute.String("decision", d.Decision)), d.Traces, "%s/%s", d.Policy, d.Decision)
	}
	assert.Equal(t, h.metric("otelcol_processor_tailsift_spans_decided", attribute.String("decision", "keep")), k.SpansKept)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "keep")), k.LateSpansKept)
	assert.Equal(t, int64(1), k.LateSpansDropped)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "drop")), k.LateSpansDropped)
	assert.Equal(t, int64(1), c.Buffer.Traces)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_buffered_traces"), c.Buffer.Traces)
	assert.Positive(t, c.Buffer.Bytes)
	assert.Equal(t, h.metric("otelcol_processor_tailsift_buffered_bytes"), c.Buffer.Bytes)
	assert.Equal(t, int64(testConfig().Buffer.MaxBytes), c.Buffer.MaxBytes)

	require.Len(t, c.Recent, 2, "the error trace and the slow trace")
	recent := map[string]statuspage.KeptTrace{}
	for _, k := range c.Recent {
		recent[k.TraceID] = k
	}
	id, slow := traceID(1), traceID(3)
	assert.True(t, recent[hex.EncodeToString(id[:])].Error)
	assert.Equal(t, "errors", recent[hex.EncodeToString(id[:])].Policy)
	assert.True(t, recent[hex.EncodeToString(slow[:])].Slow)
	assert.Equal(t, "slow", recent[hex.EncodeToString(slow[:])].Policy)
	assert.Equal(t, ptrace.StatusCodeError, h.spansOf(1)[3].Status().Code())
}

// TestStatusPageListsFromStartToShutdown: the processor is on the
// process's page while it runs.
func TestStatusPageListsFromStartToShutdown(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	listed := func() int { return len(statuspage.Default.Snapshot(t0).Components) }
	assert.Equal(t, 1, listed())
	require.NoError(t, h.p.Shutdown(t.Context()))
	assert.Zero(t, listed())
}
