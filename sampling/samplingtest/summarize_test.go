package samplingtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// span is one span of the test trace.
type span struct {
	id, parent byte
	tracestate string
}

func trace(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for _, s := range spans {
		sp := ss.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1}) // almost no randomness of its own
		sp.SetSpanID(pcommon.SpanID{s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{s.parent})
		}
		sp.TraceState().FromRaw(s.tracestate)
	}
	return td
}

// keptByBuffer runs td through a buffer and reports whether it was kept.
func keptByBuffer(t *testing.T, cfg tracebuf.Config, td ptrace.Traces) bool {
	ctx := context.Background()
	var mu sync.Mutex
	kept := 0
	emit := func(_ context.Context, td ptrace.Traces) error {
		mu.Lock()
		defer mu.Unlock()
		kept += td.SpanCount()
		return nil
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := tracebuf.New(cfg, emit, tracebuf.Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	require.NoError(t, b.Ingest(ctx, buf))
	require.NoError(t, b.Shutdown(ctx)) // decides and hands on what is kept
	mu.Lock()
	defer mu.Unlock()
	return kept > 0
}

// Summarize gives the engine the trace the buffer gives it: here, the
// identity of the first root with a tracestate, whatever comes after.
// (Summarize once took the last root's, and decided otherwise than the
// buffer.)
func TestSummarizeDecidesAsTheBuffer(t *testing.T) {
	cfg := tracebuf.DefaultConfig()
	cfg.Shards = 1
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 1}),
	}
	for _, tc := range []struct {
		name string
		td   ptrace.Traces
		keep bool
	}{
		{"child without tracestate", trace(span{id: 2, parent: 1}), false},
		{"root's rv keeps", trace(span{id: 2, parent: 1}, span{id: 1, tracestate: "ot=rv:ffffffffffffff"}), true},
		{"the first root's rv counts", trace(
			span{id: 1, tracestate: "ot=rv:ffffffffffffff"},
			span{id: 3, tracestate: "ot=rv:00000000000000"},
		), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := sampling.NewEngine(cfg.Policies)
			require.NoError(t, err)
			d := e.Decide(samplingtest.Summarize(t, e, tc.td, 0))
			assert.Equal(t, tc.keep, d.Keep(), "Summarize")
			assert.Equal(t, tc.keep, keptByBuffer(t, cfg, tc.td), "buffer")
		})
	}
}
