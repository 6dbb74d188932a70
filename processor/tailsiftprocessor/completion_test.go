package tailsiftprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
)

// A span that arrives after its trace's decision counts in its route's
// completion metrics, through the status page's recorder.
func TestRouteCompletionMetrics(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.send(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError}, spanSpec{Trace: 2, Span: 1})
	h.advance(2 * time.Second) // completion.quiet: the route has not been learned yet
	assert.Len(t, h.spansOf(1), 1)
	h.send(spanSpec{Trace: 1, Span: 2, Parent: 1}, spanSpec{Trace: 1, Span: 4, Parent: 1})
	h.advance(0)
	route := attribute.String("route", "backend / op")
	assert.Equal(t, int64(2), h.metric("otelcol_processor_tailsift_route_traces_decided", route))
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_route_partial_traces", route))
	assert.Equal(t, int64(2), h.metric("otelcol_processor_tailsift_route_late_spans", route))
}
