package tailsiftreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// outputTraffic is what both outputs are fed: error traces, slow ones,
// others, and late spans of kept traces, from two services.
func outputTraffic(g *rig) {
	for n := uint64(1); n <= 30; n++ {
		tr := errorTrace(n)
		switch n % 3 {
		case 1:
			tr[1].Status = ptrace.StatusCodeUnset
			tr[2].Dur = 2 * time.Second // slow: kept
		case 2:
			tr[1].Status = ptrace.StatusCodeOk // dropped
		}
		g.sendGRPC(batch(tr...))
	}
	g.advance(3 * time.Second) // quiet
	for n := uint64(1); n <= 30; n++ {
		g.sendGRPC(batch(spanSpec{Trace: n, Span: 9, Parent: 1})) // late
	}
	g.advance(time.Second) // the output batch
}

// TestOutputExporterSendsKeptBytes: with output::exporter the kept spans
// reach the backend through the tailsift exporter, as the bytes the buffer
// holds, and are the same spans (tracestates, annotations, resources) the
// pipeline gets without it; the pipeline gets nothing.
func TestOutputExporterSendsKeptBytes(t *testing.T) {
	gw, addrs := startRawGateways(t, 1)
	id := component.MustNewIDWithName("tailsift", "backend")
	_, expTel := startExporter(t, id, addrs, nil)

	cfg := testConfig()
	cfg.Output.AnnotateRoots = true
	cfg.Output.Exporter = &id
	require.NoError(t, confmap.Validate(cfg))
	g := newRig(t, cfg, nil)
	refCfg := testConfig()
	refCfg.Output.AnnotateRoots = true
	ref := newRig(t, refCfg, nil)

	outputTraffic(g)
	outputTraffic(ref)
	want := keptSet(ref.sink.AllTraces())
	require.Len(t, want, 20*4, "20 kept traces of 3 spans and a late one")
	require.Eventually(t, func() bool { return gw.count() >= len(want) }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, keptSet(gw.traces(t)))
	assert.Zero(t, g.sink.SpanCount(), "nothing goes down the pipeline")
	assert.Equal(t, int64(len(want)), metricValue(t, expTel, "otelcol_exporter_tailsift_spans_routed"),
		"the exporter counts what the receiver handed it")
	for _, s := range want {
		assert.Equal(t, "ot=th:0", s.ts, "kept by an error or latency policy: it stands for itself")
	}
}

// TestOutputExporterNotStarted: output::exporter names an exporter that is
// not in the receiver's pipeline (so not started first): Start fails,
// naming the key, and the receiver serves nothing.
func TestOutputExporterNotStarted(t *testing.T) {
	cfg := testConfig()
	id := component.MustNewIDWithName("tailsift", "elsewhere")
	cfg.Output.Exporter = &id
	require.NoError(t, confmap.Validate(cfg))
	r, err := newTestReceiver(receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), clock.Real{})
	require.NoError(t, err)
	err = r.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `output::exporter: "tailsift/elsewhere" has not started`)
	assert.Nil(t, r.grpcAddr, "no server started")
}

// TestOutputExporterConfig: output::exporter must name a tailsift
// exporter, and route mode keeps nothing to send through it.
func TestOutputExporterConfig(t *testing.T) {
	other := component.MustNewIDWithName("otlp_grpc", "backend")
	cfg := testConfig()
	cfg.Output.Exporter = &other
	assert.ErrorContains(t, confmap.Validate(cfg), `output: exporter: "otlp_grpc/backend" is not a tailsift exporter`)

	id := component.MustNewID("tailsift")
	cfg = routeConfig(id)
	cfg.Output.Exporter = &id
	assert.ErrorContains(t, confmap.Validate(cfg), "output::exporter: a receiver in route mode keeps nothing")
}
