package tailsiftreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/internal/statuspage"
)

// TestStatusPageAgreesWithMetrics: the receiver's buffer is on the status
// page while it runs, with the counts of its self-metrics.
func TestStatusPageAgreesWithMetrics(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	g.sendGRPC(batch(errorTrace(1)...))
	g.sendGRPC(batch(spanSpec{Trace: 2, Span: 1}))
	g.advance(2 * time.Second)

	var found []statuspage.Component
	for _, c := range statuspage.Default.Snapshot(t0).Components {
		if c.Kind == "receiver" {
			found = append(found, c)
		}
	}
	require.Len(t, found, 1)
	c := found[0]
	assert.Equal(t, int64(4), c.Counters.SpansReceived)
	assert.Equal(t, g.metric("otelcol_receiver_tailsift_spans_received"), c.Counters.SpansReceived)
	for _, d := range c.Decisions {
		assert.Equal(t, g.metric("otelcol_receiver_tailsift_traces_decided",
			attribute.String("policy", d.Policy), attribute.String("decision", d.Decision)), d.Traces, "%s/%s", d.Policy, d.Decision)
	}
	assert.Equal(t, int64(2), c.Counters.TracesDecided)
	require.Len(t, c.Recent, 1)
	assert.True(t, c.Recent[0].Error)

	require.NoError(t, g.r.Shutdown(t.Context()))
	for _, c := range statuspage.Default.Snapshot(t0).Components {
		assert.NotEqual(t, "receiver", c.Kind, "listed after Shutdown")
	}
}
