package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

// spanSpec is one span for encodeSpans.
type spanSpec struct {
	trace      uint64
	span       byte
	parent     byte // 0: a root
	service    string
	tracestate string
	start, end uint64
}

// encodeSpans builds a request with each span under a ResourceSpans and
// ScopeSpans of its own, its resource named after its service.
func encodeSpans(t testing.TB, specs ...spanSpec) []byte {
	td := ptrace.NewTraces()
	for _, sp := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", sp.service)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(tid(sp.trace))
		s.SetSpanID(pcommon.SpanID{sp.span})
		if sp.parent != 0 {
			s.SetParentSpanID(pcommon.SpanID{sp.parent})
		}
		s.TraceState().FromRaw(sp.tracestate)
		s.SetStartTimestamp(pcommon.Timestamp(sp.start))
		s.SetEndTimestamp(pcommon.Timestamp(sp.end))
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// A root that reaches a held trace brings its identity, as it does for a
// buffered trace: its tracestate's rv decides the trace again. (Rescue once
// added spans without noting the root, so the trace ID's randomness stayed.)
func TestRescuedRootBringsItsIdentity(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Rescue = RescueConfig{Window: time.Minute, MaxBytes: 1 << 20}
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 1}),
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(ctx)) }()

	// Trace 1's ID has almost no randomness: 1 % drops it.
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: 1, span: 2, parent: 1, start: 10, end: 20})))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait) // decided without its root, dropped, held
	require.NoError(t, b.Sync(ctx))
	require.Zero(t, out.count(tid(1)))

	// The root lengthens the trace and carries the largest rv: 1 % keeps it.
	root := spanSpec{trace: 1, span: 1, tracestate: "ot=rv:ffffffffffffff", start: 0, end: 100}
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, root)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Output.BatchTimeout)
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, 2, out.count(tid(1)), "the rescued trace leaves whole")
}
