package tailsiftprocessor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
)

// spansPerTrace counts the spans of each trace in tds, duplicates
// included (tracebuftest.SpansOf keys them by span number, which would
// hide a span delivered twice).
func spansPerTrace(tds []ptrace.Traces) map[pcommon.TraceID]int {
	n := make(map[pcommon.TraceID]int)
	for _, td := range tds {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					n[sp.TraceID()]++
				}
			}
		}
	}
	return n
}

// An over-budget batch refused retryably part-way (a piece found no room)
// and sent again whole: the pieces taken the first time come again with
// the retry, and the README says the spans of a trace still buffered are
// kept once. Every error trace reaches the backend with each of its 1 000
// spans exactly once.
func TestOverBudgetRetryKeepsBufferedSpansOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	cfg.Output.BatchTimeout = 0
	next := tracebuftest.NewBlocking()
	h := newHarness(t, cfg, next)

	// Trace 100 is decided a minute on and stalls the shard in next.
	h.send(spanSpec{Trace: 100, Span: 1, Status: ptrace.StatusCodeError})
	h.clk.Advance(time.Minute)
	<-next.Entered
	before := h.metric("otelcol_processor_tailsift_spans_received")

	specs := overBudget()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	refused := h.p.ConsumeTraces(ctx, batch(specs...))
	cancel()
	require.Error(t, refused, "the stalled shard left room for the whole batch")
	require.ErrorIs(t, refused, tracebuf.ErrQueueFull)
	firstTaken := h.metric("otelcol_processor_tailsift_spans_received") - before
	require.Positive(t, firstTaken, "no piece was taken before the refusal: nothing to check")
	require.Less(t, firstTaken, int64(len(specs)))
	// Every span of the attempt is counted once: taken in, or refused
	// (queue_full) for the client to send again, the pieces after the one
	// that found no room too; the message says how many of each.
	queueFull := h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "queue_full"))
	assert.Equal(t, int64(len(specs)), firstTaken+queueFull, "spans of the first attempt counted taken (%d) or refused (%d)", firstTaken, queueFull)
	assert.Contains(t, refused.Error(), fmt.Sprintf("%d spans taken in", firstTaken))
	assert.Contains(t, refused.Error(), fmt.Sprintf("%d refused", int64(len(specs))-firstTaken))

	close(next.Release)
	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(specs...)), "the retry")
	h.advance(time.Minute)
	h.advance(time.Minute)

	got := spansPerTrace(next.AllTraces())
	for n := range uint64(8) {
		assert.Equal(t, 1000, got[traceID(n+1)], "spans of error trace %d delivered (first attempt took %d spans)", n+1, firstTaken)
	}
	assert.Equal(t, firstTaken, h.metric("otelcol_processor_tailsift_spans_deduplicated"),
		"the spans the retry brought again are counted as duplicates")
}

// manyResources is a batch of n error traces of one span each, each under
// a resource of its own that carries 2 KiB of attributes (a batch
// processor merging the requests of many pods, say): about 2.2 KiB of
// queue weight a span, of which the span itself is 150 bytes.
func manyResources(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	pad := strings.Repeat("k", 2048)
	for i := range n {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		rs.Resource().Attributes().PutStr("k8s.pod.labels", pad)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("test")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID(uint64(i + 1)))
		sp.SetSpanID(spanID(uint64(i+1), 1))
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	return td
}

// The pieces of an over-budget batch are within the queue's budget with
// their resources and scopes: a batch whose weight is mostly resource
// attributes is taken in whole, none of its spans refused as too_large
// (each span with its resource weighs 2.2 KiB, far below the 1 MiB queue).
func TestOverBudgetResourceHeavyBatchIsTakenWhole(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	const n = 2000
	td := manyResources(n)
	err := h.p.ConsumeTraces(context.Background(), td)
	assert.NoError(t, err)
	assert.Zero(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")),
		"spans refused as too large though each fits the queue many times over")
	assert.Equal(t, int64(n), h.metric("otelcol_processor_tailsift_spans_received"))
	h.advance(time.Minute)
	h.advance(time.Minute)
	assert.Equal(t, n, len(spansPerTrace(h.sink.AllTraces())), "error traces kept")
}

// An over-budget batch with spans of invalid IDs among its pieces: the
// valid spans are all taken in and decided, the invalid ones counted
// refused (invalid), and the batch answered as bad data
// (INVALID_ARGUMENT, permanent) whose message counts both.
func TestOverBudgetBatchWithInvalidSpans(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	td := batch(overBudget()...)
	bad := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
			if sp.SpanID()[7]%97 == 5 { // scattered over the pieces
				sp.SetSpanID(pcommon.SpanID{})
				bad++
			}
		}
	}
	require.Positive(t, bad)
	t.Logf("%d spans of invalid IDs", bad)
	err := h.p.ConsumeTraces(context.Background(), td)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "%v", err)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, err.Error(), fmt.Sprintf("rejected %d of 8000 spans", bad), "the message counts both")
	assert.Equal(t, int64(bad), h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "invalid")))
	assert.Equal(t, int64(8000-bad), h.metric("otelcol_processor_tailsift_spans_received"))
	h.advance(time.Minute)
	h.advance(time.Minute)
	assert.Equal(t, 8000-bad, spansIn(spansPerTrace(h.sink.AllTraces())), "valid spans of the error traces kept")
}

// An over-budget batch whose caller's context has ended already is taken
// in while the queue has room, as a request is (room is tried before the
// context is).
func TestOverBudgetBatchCancelledContext(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, h.p.ConsumeTraces(ctx, batch(overBudget()...)))
	assert.Equal(t, int64(8000), h.metric("otelcol_processor_tailsift_spans_received"))
}

func spansIn(per map[pcommon.TraceID]int) (n int) {
	for _, c := range per {
		n += c
	}
	return n
}
