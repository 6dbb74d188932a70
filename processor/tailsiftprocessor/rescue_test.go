package tailsiftprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/sampling"
)

func rescueConfig(window time.Duration) *Config {
	cfg := testConfig()
	cfg.Rescue.Window = window
	cfg.Rescue.MaxBytes = 16 << 20
	return cfg
}

// A dropped trace is held for rescue.window; a late ERROR span within it
// keeps the whole trace, late span included, marked as a rescue supplement
// (no th: it counts 0, as the traces the first decision kept stand for it).
func TestRescueLateErrorKeepsWholeTrace(t *testing.T) {
	h := newHarness(t, rescueConfig(30*time.Second), nil)
	h.send(spanSpec{Trace: 1, Span: 2, Parent: 1}, spanSpec{Trace: 1, Span: 3, Parent: 2})
	h.send(spanSpec{Trace: 1, Span: 1})
	h.advance(3 * time.Second) // quiet: decided, dropped, held
	require.Empty(t, h.spansOf(1))
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	assert.Positive(t, h.metric("otelcol_processor_tailsift_rescue_held_bytes"))

	h.advance(20 * time.Second)
	h.send(spanSpec{Trace: 1, Span: 4, Parent: 2, Status: ptrace.StatusCodeError})
	h.advance(100 * time.Millisecond) // the output batch
	got := h.spansOf(1)
	require.Len(t, got, 4, "the rescued trace should arrive whole")
	for n, sp := range got {
		assert.Equal(t, "tailsift=rescue", sp.TraceState().AsRaw(), "span %d", n)
		assert.Zero(t, sampling.AdjustedCount(sp.TraceState().AsRaw()), "span %d", n)
	}
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_traces_rescued", attribute.String("policy", "errors")))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_rescue_held_bytes"))

	// Later spans follow the new decision. Every span is accounted once:
	// decided with its trace, or late (the rescuing span and this one).
	h.send(spanSpec{Trace: 1, Span: 5, Parent: 2})
	h.advance(100 * time.Millisecond)
	require.Len(t, h.spansOf(1), 5)
	assert.Equal(t, "tailsift=rescue", h.spansOf(1)[4].TraceState().AsRaw(), "a later span of a rescued trace")
	assert.Equal(t, int64(2), h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "keep")))
	assert.Equal(t, h.metric("otelcol_processor_tailsift_spans_received"),
		h.metric("otelcol_processor_tailsift_spans_decided")+h.metric("otelcol_processor_tailsift_late_spans"))
}

// A late span that makes the trace slow rescues it too; one that changes
// nothing leaves it held and dropped.
func TestRescueLateSpanMakingTraceSlow(t *testing.T) {
	h := newHarness(t, rescueConfig(30*time.Second), nil)
	h.send(spanSpec{Trace: 1, Span: 1}, spanSpec{Trace: 1, Span: 2, Parent: 1})
	h.advance(3 * time.Second)
	h.send(spanSpec{Trace: 1, Span: 3, Parent: 1, Dur: 5 * time.Millisecond}) // within the trace
	h.advance(100 * time.Millisecond)
	require.Empty(t, h.spansOf(1))
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "drop")))
	h.send(spanSpec{Trace: 1, Span: 4, Parent: 1, Dur: 1500 * time.Millisecond})
	h.advance(100 * time.Millisecond)
	assert.Len(t, h.spansOf(1), 4)
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_traces_rescued", attribute.String("policy", "slow")))
}

// After the window, a held trace is let go: a late ERROR span is then
// dropped like any late span of a dropped trace.
func TestRescueWindowEnds(t *testing.T) {
	h := newHarness(t, rescueConfig(10*time.Second), nil)
	h.send(spanSpec{Trace: 1, Span: 1}, spanSpec{Trace: 1, Span: 2, Parent: 1})
	h.advance(3 * time.Second)
	require.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	h.advance(11 * time.Second)
	assert.Zero(t, h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_rescue_held_bytes"))
	h.send(spanSpec{Trace: 1, Span: 3, Parent: 1, Status: ptrace.StatusCodeError})
	h.advance(100 * time.Millisecond)
	assert.Empty(t, h.spansOf(1))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_traces_rescued"))
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "drop")))
}

// rescue.max_bytes bounds the held traces: the oldest are let go first.
func TestRescueBudgetLetsOldestGo(t *testing.T) {
	cfg := rescueConfig(time.Minute)
	cfg.Shards = 1
	cfg.Rescue.MaxBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	const traces = 6000 // about 2 MB held: twice the budget
	for n := uint64(1); n <= traces; n += 100 {
		var specs []spanSpec
		for k := n; k < n+100; k++ {
			specs = append(specs, spanSpec{Trace: k, Span: 1})
		}
		h.send(specs...)
	}
	h.advance(3 * time.Second)
	held := h.metric("otelcol_processor_tailsift_rescue_held_traces")
	assert.Positive(t, held)
	assert.Less(t, held, int64(traces))
	assert.LessOrEqual(t, h.metric("otelcol_processor_tailsift_rescue_held_bytes"), int64(cfg.Rescue.MaxBytes))
	// The newest is still held, the oldest is not.
	h.send(spanSpec{Trace: traces, Span: 2, Parent: 1, Status: ptrace.StatusCodeError},
		spanSpec{Trace: 1, Span: 2, Parent: 1, Status: ptrace.StatusCodeError})
	h.advance(100 * time.Millisecond)
	assert.Len(t, h.spansOf(traces), 2)
	assert.Empty(t, h.spansOf(1))
}

// Shutdown lets every held trace go: nothing is left accounted.
func TestRescueShutdownReleasesHeld(t *testing.T) {
	h := newHarness(t, rescueConfig(time.Minute), nil)
	for n := uint64(1); n <= 50; n++ {
		h.send(spanSpec{Trace: n, Span: 1})
	}
	h.advance(3 * time.Second)
	require.Equal(t, int64(50), h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	require.NoError(t, h.p.Shutdown(t.Context()))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_rescue_held_bytes"))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_buffered_bytes"))
}

// A held trace is found even after the dropped filter has forgotten it.
func TestRescueOutlivesDroppedFilter(t *testing.T) {
	cfg := rescueConfig(time.Minute)
	cfg.Shards = 1
	cfg.DecisionCache.DroppedMaxEntries = 16 // two generations of 8
	h := newHarness(t, cfg, nil)
	for n := uint64(1); n <= 100; n++ {
		h.send(spanSpec{Trace: n, Span: 1}, spanSpec{Trace: n, Span: 2, Parent: 1})
	}
	h.advance(3 * time.Second)
	require.Equal(t, int64(100), h.metric("otelcol_processor_tailsift_rescue_held_traces"))
	h.send(spanSpec{Trace: 1, Span: 3, Parent: 1, Status: ptrace.StatusCodeError})
	h.advance(100 * time.Millisecond)
	assert.Len(t, h.spansOf(1), 3, "trace 1 left the dropped filter but is still held")
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_traces_rescued"))
}
