package tailsiftprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A request heavier than the whole of buffer.max_queued_bytes (the otlp
// receiver in front of the processor has its own size limits, which the
// processor cannot see) is refused permanently: INVALID_ARGUMENT, which
// the otlp receiver answers with HTTP 400, not a retryable status a client
// would resend forever; the error names the key to raise, and the spans are
// counted as refused, reason too_large.
func TestRequestOverQueueBudgetIsPermanent(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	var specs []spanSpec
	for n := range uint64(8) {
		for k := range uint64(1000) {
			specs = append(specs, spanSpec{Trace: n + 1, Span: k + 2, Parent: 1, Attrs: map[string]any{"pad": "0123456789abcdef"}})
		}
	}
	err := h.p.ConsumeTraces(context.Background(), batch(specs...))
	require.Error(t, err, "a request over buffer.max_queued_bytes was accepted")
	assert.True(t, consumererror.IsPermanent(err), "a retry can never fit: %v", err)
	assert.Contains(t, err.Error(), "buffer.max_queued_bytes")
	st, ok := status.FromError(err)
	require.True(t, ok)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Equal(t, int64(len(specs)), h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")))
}
