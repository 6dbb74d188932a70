package tailsiftexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/internal/statuspage"
)

// TestStatusPageShowsMembers: the status page's cluster view lists the
// members, which are down, and the spans routed to each, the same count as
// the spans_routed self-metric.
func TestStatusPageShowsMembers(t *testing.T) {
	h := newHarness(t, "127.0.0.31", "127.0.0.32")
	victim := h.ring.Members()[0]
	h.gw.Stop(victim)
	h.send(20)
	require.Eventually(t, func() bool { return h.metric("otelcol_exporter_tailsift_members_up") == 1 }, 10*time.Second, 5*time.Millisecond)

	clusters := statuspage.Default.Snapshot(time.Now()).Clusters
	require.Len(t, clusters, 1, "the exporter shows itself from Start to Shutdown")
	c := clusters[0]
	assert.Equal(t, "exporter", c.Role)
	assert.Contains(t, c.Component, "tailsift")
	assert.Equal(t, h.metric("otelcol_exporter_tailsift_spans_rerouted"), c.Rerouted)
	require.Len(t, c.Members, 2)
	for _, m := range c.Members {
		assert.Equal(t, m.Address != victim, m.Up, m.Address)
		assert.Equal(t, h.metric("otelcol_exporter_tailsift_spans_routed", attribute.String("member", m.Address)), m.Spans, m.Address)
	}
	assert.Positive(t, c.Members[0].Spans+c.Members[1].Spans)
}
