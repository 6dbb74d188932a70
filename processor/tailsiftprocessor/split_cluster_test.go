package tailsiftprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// handedOver is td behind the control a gateway puts on a handover: the
// spans are handed over, and so is the decision to keep trace kept.
func handedOver(t *testing.T, td ptrace.Traces, kept uint64) ptrace.Traces {
	t.Helper()
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	c := cluster.Control{HandedOver: true, Decisions: cluster.Decisions{Kept: []cluster.Kept{{ID: traceID(kept)}}}}
	out, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(append(cluster.AppendControl(nil, &c), body...))
	require.NoError(t, err)
	return out
}

// A batch that another gateway handed over (its control at its head) is
// heavier than buffer.max_queued_bytes here: the gateway takes it whole as
// it did before batches were split (spans taken in again are never refused
// for their weight), with its control: its spans stay here, none is
// forwarded again, and the decision it hands over is taken (a late span of
// that kept trace is forwarded at once).
func TestOverBudgetHandoverKeepsItsControl(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = self, []string{self, addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	h := newHarness(t, cfg, nil)
	// The kept trace handed over is one this gateway owns, as a handover's.
	r := ring.New(c.Members.Static)
	kept := uint64(99)
	for r.Members()[r.Owner(ring.Hash(traceID(kept)))] != self {
		kept++
	}

	require.NoError(t, h.p.ConsumeTraces(context.Background(), handedOver(t, batch(overBudget()...), kept)))
	h.send(spanSpec{Trace: kept, Span: 5, Parent: 1}) // a late span of the kept trace
	h.advance(time.Minute)
	h.advance(time.Minute)
	assert.Zero(t, gws.Count(), "handed-over spans forwarded again")
	for n := range uint64(8) {
		assert.Len(t, h.spansOf(n+1), 1000, "handed-over error trace %d kept here", n+1)
	}
	assert.Len(t, h.spansOf(kept), 1, "the late span of the handed-over kept trace")
	assert.Zero(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")))
}

// A client's over-budget batch through a gateway is taken in pieces by
// the cluster node: every span is kept here (its trace is this gateway's)
// or forwarded to its owner, none lost or refused.
func TestOverBudgetBatchThroughGateway(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = self, []string{self, addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	h := newHarness(t, cfg, nil)
	r := ring.New(c.Members.Static)
	mine := 0
	for n := range uint64(8) {
		if r.Members()[r.Owner(ring.Hash(traceID(n+1)))] == self {
			mine += 1000
		}
	}

	require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(overBudget()...)))
	require.Eventually(t, func() bool { return gws.Count() == 8000-mine }, 10*time.Second, 5*time.Millisecond)
	h.advance(time.Minute)
	h.advance(time.Minute)
	assert.Equal(t, mine, spansIn(spansPerTrace(h.sink.AllTraces())))
	assert.Zero(t, h.metric("otelcol_processor_tailsift_spans_refused", attribute.String("reason", "too_large")))
}
