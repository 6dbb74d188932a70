package tailsiftexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestShutdownWhileAGatewayRefuses stops the agent while one of two
// gateways answers UNAVAILABLE with a RetryInfo, as a tailsift gateway does
// when it shuts down or its buffer is full: with the exporter's defaults
// (batches in front of the queue, retries), the spans it holds go to the
// gateway that is up, within the shutdown deadline, and are counted
// routed once, where they were first routed, and re-routed.
func TestShutdownWhileAGatewayRefuses(t *testing.T) {
	h := newHarness(t, "127.0.0.131", "127.0.0.132")
	refusing, up := h.ring.Members()[0], h.ring.Members()[1]
	st, err := status.New(codes.Unavailable, "shutting down").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	require.NoError(t, err)
	refusals := make([]error, 100)
	for i := range refusals {
		refusals[i] = st.Err()
	}
	h.gw.Refuse(refusing, refusals...)

	owned := 0
	for range 10 {
		td := h.w.Batch(8, 5)
		for id, svc := range routertest.ServiceOf(td) {
			h.sent[id] = svc
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if h.owner(sp.TraceID()) == refusing {
						owned++
					}
				}
			}
		}
		require.NoError(t, h.exp.ConsumeTraces(t.Context(), td))
	}
	require.Eventually(t, func() bool { return h.gw.Calls(refusing) >= 1 }, 10*time.Second, 5*time.Millisecond,
		"the refusing gateway was never sent its batch")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.exp.Shutdown(ctx))

	require.Positive(t, owned, "the refusing gateway owned no trace: the test proves nothing")
	got := h.gw.Snapshot()
	for _, rs := range got {
		assert.Equal(t, up, rs[0].Gateway)
	}
	assert.Len(t, got, len(h.sent), "spans delivered of those sent (%d owned by the refusing gateway)", owned)
	assert.Equal(t, int64(len(h.sent)-owned), h.metric("otelcol_exporter_tailsift_spans_routed", attribute.String("member", up)),
		"spans routed to the gateway up: its own; the refusing one's are counted where they were first routed")
	assert.Equal(t, int64(len(h.sent)), h.metric("otelcol_exporter_tailsift_spans_routed"), "each span routed once")
	assert.Equal(t, int64(owned), h.metric("otelcol_exporter_tailsift_spans_rerouted"), "the refusing gateway's re-routed")
}
