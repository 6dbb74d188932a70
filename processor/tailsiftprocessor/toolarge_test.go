package tailsiftprocessor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
)

// overBudget is a batch of 8 error traces of 1 000 spans each, about 2.5
// MiB of queue weight: more than a buffer.max_queued_bytes of 1 MiB holds.
func overBudget() []spanSpec {
	var specs []spanSpec
	for n := range uint64(8) {
		specs = append(specs, spanSpec{Trace: n + 1, Span: 1, Status: ptrace.StatusCodeError})
		for k := range uint64(999) {
			specs = append(specs, spanSpec{Trace: n + 1, Span: k + 2, Parent: 1, Attrs: map[string]any{"pad": "0123456789abcdef"}})
		}
	}
	return specs
}

// A batch heavier than the whole of buffer.max_queued_bytes (the otlp
// receiver in front of the processor has its own size limits, which the
// processor cannot see; a batch processor can merge requests) is taken in
// pieces that each fit, not refused: a refusal would lose its traces, error
// traces among them, since a client cannot resend it in a form that fits.
// Nothing is counted refused, and every span reaches its decision.
func TestRequestOverQueueBudgetIsSplit(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	specs := overBudget()
	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(specs...)))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")))
	assert.Equal(t, int64(len(specs)), h.metric("otelcol_processor_tailsift_spans_received"))
	h.advance(time.Minute)
	h.advance(time.Minute)
	for n := range uint64(8) {
		assert.Len(t, h.spansOf(n+1), 1000, "error trace %d kept whole", n+1)
	}
}

// A single span heavier than the whole queue can never be taken in: it is
// refused permanently (INVALID_ARGUMENT, which the otlp receiver answers
// with HTTP 400, not a status a client would resend forever), the error
// names the key to raise, and the span is counted refused, reason
// too_large. The rest of the batch is taken in, as the message says.
func TestSpanOverQueueBudgetIsPermanent(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	specs := overBudget()
	specs = append(specs, spanSpec{Trace: 9, Span: 1, Status: ptrace.StatusCodeError, Attrs: map[string]any{"blob": strings.Repeat("x", 1<<20)}})
	err := h.p.ConsumeTraces(context.Background(), batch(specs...))
	require.Error(t, err, "a span over buffer.max_queued_bytes was accepted")
	assert.True(t, consumererror.IsPermanent(err), "a retry can never fit: %v", err)
	assert.Contains(t, err.Error(), "a span needs")
	assert.Contains(t, err.Error(), "raise buffer.max_queued_bytes or send smaller spans", "not smaller requests: one span is too large")
	assert.Contains(t, err.Error(), "the other 8000 spans of the request were taken in")
	st, ok := status.FromError(err)
	require.True(t, ok)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")))
	h.advance(time.Minute)
	h.advance(time.Minute)
	for n := range uint64(8) {
		assert.Len(t, h.spansOf(n+1), 1000, "error trace %d kept whole", n+1)
	}
}

// A batch taken in pieces that finds no room for a piece before the
// caller's context ends is refused as a request is: retryable,
// UNAVAILABLE, counted queue_full; the client resends it whole.
func TestOverBudgetBatchWithoutRoomIsRetryable(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	next := tracebuftest.NewStalled(cfg)
	h := newHarness(t, cfg, next)
	// The first error span is decided at once and blocks its shard in next.
	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(spanSpec{Trace: 100, Span: 1, Status: ptrace.StatusCodeError})))
	<-next.Entered
	var refused error
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		refused = h.p.ConsumeTraces(ctx, batch(overBudget()...))
		cancel()
		if refused != nil {
			break
		}
	}
	require.Error(t, refused)
	assert.False(t, consumererror.IsPermanent(refused), "overload must be retryable: %v", refused)
	assert.ErrorIs(t, refused, tracebuf.ErrQueueFull)
	assert.Equal(t, codes.Unavailable, status.Code(refused))
	assert.Positive(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "queue_full")))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")))
	close(next.Release)
}
