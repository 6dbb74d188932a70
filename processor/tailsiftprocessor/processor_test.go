package tailsiftprocessor

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

var t0 = tracebuftest.T0

type spanSpec = tracebuftest.Span

var (
	traceID = tracebuftest.TraceID
	spanID  = tracebuftest.SpanID
	batch   = tracebuftest.Batch
)

// harness is a processor on a fake clock with a sink and telemetry.
type harness struct {
	t    *testing.T
	p    *tailsiftProcessor
	clk  *clocktest.Fake
	sink *consumertest.TracesSink
	tel  *componenttest.Telemetry
}

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Shards = 2
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		sampling.NewPolicyConfig("slow", "latency", &sampling.LatencyConfig{ThresholdMs: 1000}),
	}
	return cfg
}

func newHarness(t *testing.T, cfg *Config, next consumer.Traces) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	env := tracebuftest.NewEnv(next)
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = env.Tel.NewTelemetrySettings()
	p, err := newProcessorWithClock(set, cfg, env.Next, env.Clock)
	require.NoError(t, err)
	env.Start(t, p)
	return &harness{t: t, p: p, clk: env.Clock, sink: env.Sink, tel: env.Tel}
}

// send consumes one batch and waits until the shards have taken it in, so
// that its spans are stamped with the current fake time.
func (h *harness) send(specs ...spanSpec) {
	h.t.Helper()
	require.NoError(h.t, h.p.ConsumeTraces(context.Background(), batch(specs...)))
	require.NoError(h.t, h.p.buf.Sync(context.Background()))
}

// advance waits until the shards have taken in what was sent, moves the
// clock and waits until the shards have acted on it.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	// Spans still queued would be stamped with the advanced clock.
	require.NoError(h.t, h.p.buf.Sync(context.Background()))
	h.clk.Advance(d)
	require.NoError(h.t, h.p.buf.Sync(context.Background()))
}

// spansOf returns the received spans of trace n, by span number.
func (h *harness) spansOf(n uint64) map[uint64]ptrace.Span {
	return tracebuftest.SpansOf(h.sink.AllTraces(), traceID(n))
}

func (h *harness) metric(name string, attrs ...attribute.KeyValue) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	want := attribute.NewSet(attrs...)
	var total int64
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			match := true
			for _, kv := range want.ToSlice() {
				if v, ok := dp.Attributes.Value(kv.Key); !ok || v != kv.Value {
					match = false
				}
			}
			if match {
				total += dp.Value
			}
		}
	}
	return total
}

// errorTrace is trace n with the error on a non-root span, split by the caller.
func errorTrace(n uint64) []spanSpec {
	return []spanSpec{
		{Trace: n, Span: 2, Parent: 1},
		{Trace: n, Span: 3, Parent: 2, Status: ptrace.StatusCodeError},
		{Trace: n, Span: 1},
	}
}

func TestCompletionQuietAfterRoot(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	tr := errorTrace(1)
	h.send(tr[0], tr[1])
	h.advance(5 * time.Second) // no root yet: quiet does not apply
	assert.Empty(t, h.spansOf(1))

	h.send(tr[2])
	h.advance(1900 * time.Millisecond)
	assert.Empty(t, h.spansOf(1), "decided before quiet elapsed")
	h.advance(100 * time.Millisecond)
	got := h.spansOf(1)
	require.Len(t, got, 3, "trace not decided once quiet elapsed after the root")
	for _, sp := range got {
		assert.Equal(t, "ot=th:0", sp.TraceState().AsRaw())
	}
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_traces_decided",
		attribute.String("policy", "errors"), attribute.String("decision", "keep")))
}

func TestCompletionQuietRestartsOnNewSpan(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	tr := errorTrace(1)
	h.send(tr[2], tr[0])
	h.advance(1500 * time.Millisecond)
	h.send(tr[1]) // a span after the root postpones the decision
	h.advance(1500 * time.Millisecond)
	assert.Empty(t, h.spansOf(1))
	h.advance(500 * time.Millisecond)
	assert.Len(t, h.spansOf(1), 3)
}

func TestCompletionMaxWaitWithoutRoot(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	tr := errorTrace(1)
	h.send(tr[0], tr[1])
	h.advance(29900 * time.Millisecond)
	assert.Empty(t, h.spansOf(1))
	h.advance(100 * time.Millisecond)
	assert.Len(t, h.spansOf(1), 2, "rootless trace must be decided at max_wait")
}

func TestCompletionMaxWaitWithBusyRoot(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.send(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError})
	for i := uint64(2); i <= 30; i++ { // a span every second keeps quiet from firing
		h.advance(time.Second)
		h.send(spanSpec{Trace: 1, Span: i, Parent: 1})
	}
	assert.Empty(t, h.spansOf(1))
	h.advance(time.Second) // 30 s after the first span
	assert.Len(t, h.spansOf(1), 30)
}

func TestMaxSpansDecidesAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Completion.MaxSpans = 5
	h := newHarness(t, cfg, nil)
	var specs []spanSpec
	for i := uint64(2); i <= 6; i++ {
		specs = append(specs, spanSpec{Trace: 7, Span: i, Parent: 1, Status: ptrace.StatusCodeError})
	}
	h.send(specs...)
	h.advance(0)
	assert.Len(t, h.spansOf(7), 5)
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_early_decisions", attribute.String("reason", "max_spans")))
	// The rest of the trace follows the decision at once.
	h.send(spanSpec{Trace: 7, Span: 1}, spanSpec{Trace: 7, Span: 8, Parent: 1})
	h.advance(0)
	assert.Len(t, h.spansOf(7), 7)
	assert.Equal(t, int64(2), h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "keep")))
}

func TestLateSpansFollowTheDecision(t *testing.T) {
	cfg := testConfig()
	cfg.Policies = append(cfg.Policies,
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 50}))
	h := newHarness(t, cfg, nil)
	th, err := otelsampling.ProbabilityToThreshold(0.5)
	require.NoError(t, err)
	want := "ot=th:" + th.TValue()

	// Find a fast trace the baseline keeps and one it drops.
	var kept, dropped uint64
	for n := uint64(100); kept == 0 || dropped == 0; n++ {
		if th.ShouldSample(otelsampling.TraceIDToRandomness(traceID(n))) {
			kept = n
		} else {
			dropped = n
		}
	}
	h.send(spanSpec{Trace: kept, Span: 1}, spanSpec{Trace: dropped, Span: 1})
	h.advance(2 * time.Second)
	require.Len(t, h.spansOf(kept), 1)
	require.Empty(t, h.spansOf(dropped))

	h.send(spanSpec{Trace: kept, Span: 2, Parent: 1}, spanSpec{Trace: dropped, Span: 2, Parent: 1})
	h.advance(0) // no time passes: late spans are forwarded at once
	got := h.spansOf(kept)
	require.Len(t, got, 2)
	assert.Equal(t, want, got[2].TraceState().AsRaw(), "late span must carry its trace's threshold")
	assert.Equal(t, want, got[1].TraceState().AsRaw())
	assert.Empty(t, h.spansOf(dropped))
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "keep")))
	assert.Equal(t, int64(1), h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "drop")))
}

func TestTraceStateMergedWithIncoming(t *testing.T) {
	cfg := testConfig()
	h := newHarness(t, cfg, nil)
	h.send(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError, TS: "vendor=abc,ot=rv:abcdef01234567"},
		spanSpec{Trace: 2, Span: 1, Status: ptrace.StatusCodeError, TS: "ot=th:8"}) // head-sampled at 50 %
	h.advance(2 * time.Second)
	// W3C: the modified ot entry moves to the front; other vendors' entries stay.
	assert.Equal(t, "ot=rv:abcdef01234567;th:0,vendor=abc", h.spansOf(1)[1].TraceState().AsRaw())
	assert.Equal(t, "ot=th:8", h.spansOf(2)[1].TraceState().AsRaw(), "a head threshold stays: the trace stands for 2")
}

func TestMemoryBudgetDecidesOldestEarly(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	cfg.Buffer.MaxBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	const traces = 6000 // about 2 MB of spans: twice the budget
	for n := uint64(1); n <= traces; n += 100 {
		var specs []spanSpec
		for k := n; k < n+100; k++ {
			st := ptrace.StatusCodeOk
			if k%10 == 0 {
				st = ptrace.StatusCodeError
			}
			specs = append(specs, spanSpec{Trace: k, Span: 2, Parent: 1, Status: st})
		}
		h.send(specs...)
	}
	h.advance(0)
	early := h.metric("otelcol_processor_tailsift_early_decisions", attribute.String("reason", "memory"))
	assert.Positive(t, early, "budget never forced a decision")
	assert.LessOrEqual(t, h.metric("otelcol_processor_tailsift_buffered_bytes"), int64(cfg.Buffer.MaxBytes))
	// The oldest went first, and every error trace decided so far was kept.
	assert.Len(t, h.spansOf(10), 1)
	assert.Empty(t, h.spansOf(traces), "the newest trace should still be buffered")
	h.advance(31 * time.Second)
	for n := uint64(10); n <= traces; n += 10 {
		require.Len(t, h.spansOf(n), 1, "error trace %d lost", n)
	}
	assert.Equal(t, int64(traces), h.metric("otelcol_processor_tailsift_traces_decided"))
}

// TestErrorSpanAfterMemoryDropIsKept: a trace the memory budget decided
// early, and dropped, is not remembered as dropped, so an ERROR span of it
// arriving afterwards is still kept.
func TestErrorSpanAfterMemoryDropIsKept(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	cfg.Buffer.MaxBytes = 1 << 20
	h := newHarness(t, cfg, nil)
	const traces = 6000 // twice the budget: the oldest are decided early
	for n := uint64(1); n <= traces; n += 100 {
		var specs []spanSpec
		for k := n; k < n+100; k++ {
			specs = append(specs, spanSpec{Trace: k, Span: 2, Parent: 1, Status: ptrace.StatusCodeOk})
		}
		h.send(specs...)
	}
	h.advance(0)
	require.Positive(t, h.metric("otelcol_processor_tailsift_early_decisions", attribute.String("reason", "memory")))
	require.Empty(t, h.spansOf(1), "trace 1 should have been dropped early")
	h.send(spanSpec{Trace: 1, Span: 3, Parent: 1, Status: ptrace.StatusCodeError})
	h.advance(31 * time.Second)
	require.Len(t, h.spansOf(1), 1, "the error span of a trace dropped for memory was lost")
	assert.Zero(t, h.metric("otelcol_processor_tailsift_late_spans", attribute.String("decision", "drop")))
}

func TestShutdownDecidesAndFlushesEverything(t *testing.T) {
	cfg := testConfig()
	sink := new(consumertest.TracesSink)
	h := &harness{t: t, clk: clocktest.NewFake(t0), sink: sink}
	p, err := newProcessorWithClock(processortest.NewNopSettings(metadata.Type), cfg, sink, h.clk)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	h.p = p
	for n := uint64(1); n <= 200; n++ {
		tr := errorTrace(n)
		if n%2 == 0 {
			tr[1].Status = ptrace.StatusCodeOk
		}
		h.send(tr...)
	}
	require.NoError(t, p.Shutdown(context.Background()))
	for n := uint64(1); n <= 200; n++ {
		if n%2 == 1 {
			assert.Len(t, h.spansOf(n), 3, "error trace %d not flushed on shutdown", n)
		} else {
			assert.Empty(t, h.spansOf(n))
		}
	}
	require.NoError(t, p.Shutdown(context.Background()), "second Shutdown")
	assert.ErrorIs(t, p.ConsumeTraces(context.Background(), batch(errorTrace(999)...)), tracebuf.ErrShutdown)
}

// flaky fails the first n calls, retryably or permanently.
type flaky struct {
	consumertest.TracesSink
	fails     atomic.Int32
	permanent bool
}

func (f *flaky) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if f.fails.Add(-1) >= 0 {
		err := errors.New("backend unavailable")
		if f.permanent {
			return consumererror.NewPermanent(err)
		}
		return err
	}
	return f.TracesSink.ConsumeTraces(ctx, td)
}

func TestNextConsumerErrors(t *testing.T) {
	t.Run("retryable errors are retried", func(t *testing.T) {
		next := &flaky{}
		next.fails.Store(3)
		h := newHarness(t, testConfig(), next)
		h.send(errorTrace(1)...)
		h.advance(2 * time.Second)
		require.Eventually(t, func() bool { return next.SpanCount() == 3 }, 10*time.Second, 5*time.Millisecond)
	})
	t.Run("shutdown returns permanent errors", func(t *testing.T) {
		next := &flaky{permanent: true}
		next.fails.Store(1)
		clk := clocktest.NewFake(t0)
		p, err := newProcessorWithClock(processortest.NewNopSettings(metadata.Type), testConfig(), next, clk)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
		require.NoError(t, p.ConsumeTraces(context.Background(), batch(errorTrace(1)...)))
		err = p.Shutdown(context.Background())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "backend unavailable")
	})
	t.Run("shutdown gives up when its context ends", func(t *testing.T) {
		next := &flaky{}
		next.fails.Store(1 << 30)
		clk := clocktest.NewFake(t0)
		p, err := newProcessorWithClock(processortest.NewNopSettings(metadata.Type), testConfig(), next, clk)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
		require.NoError(t, p.ConsumeTraces(context.Background(), batch(errorTrace(1)...)))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err = p.Shutdown(ctx)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestInvalidSpansRejectedRestGoesThrough(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	td := batch(errorTrace(1)...)
	bad := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	bad.SetSpanID(spanID(9, 9)) // all-zero trace ID
	nospan := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	nospan.SetTraceID(traceID(9)) // no span ID
	err := h.p.ConsumeTraces(context.Background(), td)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "bad data must be a permanent error")
	assert.Contains(t, err.Error(), "rejected 2 of 5 spans")
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "the otlp receiver answers INVALID_ARGUMENT / 400")
	var inv *tracebuf.InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Equal(t, 2, inv.Rejected)
	h.advance(0) // take the valid spans in before the clock moves
	h.advance(2 * time.Second)
	assert.Len(t, h.spansOf(1), 3)
	assert.Equal(t, int64(2), h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "invalid")))
}

func TestQueueFullRefusesRetryably(t *testing.T) {
	cfg := testConfig()
	next := tracebuftest.NewStalled(cfg)
	h := newHarness(t, cfg, next)
	// The first error span is decided at once and blocks the shard in next
	// (so no Sync here: it would wait for the blocked shard).
	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError})))
	<-next.Entered
	var refused error
	for n := uint64(2); n < 100000 && refused == nil; n++ {
		specs := make([]spanSpec, 0, 200)
		for k := range uint64(200) {
			specs = append(specs, spanSpec{Trace: n*1000 + k, Span: 1})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		refused = h.p.ConsumeTraces(ctx, batch(specs...))
		cancel()
	}
	require.Error(t, refused)
	assert.False(t, consumererror.IsPermanent(refused), "overload must be retryable")
	assert.True(t, strings.Contains(refused.Error(), "queue full"), refused.Error())
	assert.ErrorIs(t, refused, tracebuf.ErrQueueFull)
	// The otlp receiver answers UNAVAILABLE with this RetryInfo (gRPC), or
	// 503 with Retry-After: 1 (HTTP).
	st, ok := status.FromError(refused)
	require.True(t, ok, "a gRPC status for the receivers")
	assert.Equal(t, codes.Unavailable, st.Code())
	require.Len(t, st.Details(), 1)
	ri, ok := st.Details()[0].(*errdetails.RetryInfo)
	require.True(t, ok, "RetryInfo detail, got %T", st.Details()[0])
	assert.Equal(t, time.Second, ri.GetRetryDelay().AsDuration())
	assert.Positive(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "queue_full")))
	close(next.Release)
}

func TestLifecycleThroughFactory(t *testing.T) {
	f := NewFactory()
	sink := new(consumertest.TracesSink)
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Completion.Quiet = 10 * time.Millisecond
	cfg.Completion.MaxWait = 50 * time.Millisecond
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	td := batch(errorTrace(42)...)
	td.MarkReadOnly()
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	require.Eventually(t, func() bool { return sink.SpanCount() == 3 }, 5*time.Second, 5*time.Millisecond,
		"real-clock decision did not come")
	require.NoError(t, p.Shutdown(context.Background()))
}

// With a budget, each class's probability is a gauge, and so is the rate in
// effect; without, neither gauge.
func TestBudgetClassProbabilityGauge(t *testing.T) {
	rate := func(tel *componenttest.Telemetry) []float64 {
		m, err := tel.GetMetric("otelcol_processor_tailsift_budget_rate")
		if err != nil {
			return nil
		}
		var out []float64
		for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
			out = append(out, dp.Value)
		}
		return out
	}
	gauge := func(tel *componenttest.Telemetry) map[string]float64 {
		m, err := tel.GetMetric("otelcol_processor_tailsift_budget_class_probability")
		if err != nil {
			return nil
		}
		out := map[string]float64{}
		for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
			class, _ := dp.Attributes.Value("class")
			out[class.AsString()] = dp.Value
		}
		return out
	}
	t.Run("budget on", func(t *testing.T) {
		cfg := testConfig()
		cfg.Budget.TracesPerSecond = 100
		h := newHarness(t, cfg, nil)
		h.send(errorTrace(1)...)
		h.advance(2 * time.Second)
		assert.Equal(t, map[string]float64{"errors": 1, "slow": 1}, gauge(h.tel))
		assert.Equal(t, []float64{100}, rate(h.tel))
	})
	t.Run("budget off", func(t *testing.T) {
		h := newHarness(t, testConfig(), nil)
		h.send(errorTrace(1)...)
		h.advance(2 * time.Second)
		assert.Nil(t, gauge(h.tel))
		assert.Nil(t, rate(h.tel))
	})
}

func TestAnnotateRoots(t *testing.T) {
	cfg := testConfig()
	cfg.Output.AnnotateRoots = true
	cfg.Policies = append(cfg.Policies, sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 25}))
	h := newHarness(t, cfg, nil)
	h.send(errorTrace(1)...)
	// Fast, successful traces: the 25 % baseline keeps some of them.
	var fast []spanSpec
	for n := uint64(100); n < 140; n++ {
		fast = append(fast, spanSpec{Trace: n, Span: 2, Parent: 1}, spanSpec{Trace: n, Span: 1})
	}
	h.send(fast...)
	h.advance(2 * time.Second)

	check := func(n uint64, rule string, rate int64) {
		t.Helper()
		spans := h.spansOf(n)
		require.NotEmpty(t, spans, "trace %d", n)
		for no, sp := range spans {
			r, hasRule := sp.Attributes().Get("sampling.rule")
			sr, hasRate := sp.Attributes().Get("SampleRate")
			if no != 1 {
				assert.False(t, hasRule || hasRate, "trace %d span %d is not a root", n, no)
				continue
			}
			require.True(t, hasRule && hasRate, "trace %d root", n)
			assert.Equal(t, rule, r.Str())
			assert.Equal(t, rate, sr.Int())
			assert.Equal(t, 1, keyCount(sp, "sampling.rule"), "once")
			assert.Equal(t, 1, keyCount(sp, "SampleRate"), "once")
		}
	}
	check(1, "errors", 1)
	kept := 0
	for n := uint64(100); n < 140; n++ {
		if len(h.spansOf(n)) > 0 {
			check(n, "baseline", 4)
			kept++
		}
	}
	assert.Positive(t, kept, "the baseline kept none of 40 traces")
}

// keyCount counts the attributes of sp named key.
func keyCount(sp ptrace.Span, key string) int {
	n := 0
	for k := range sp.Attributes().All() {
		if k == key {
			n++
		}
	}
	return n
}
