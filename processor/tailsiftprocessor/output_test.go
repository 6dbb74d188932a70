package tailsiftprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestOutputExporterSkipsThePipeline: with output::exporter the processor
// hands its kept spans to the tailsift exporter as bytes: the backend gets
// every span of every kept trace, once, marked, and the rest of the
// pipeline gets nothing.
func TestOutputExporterSkipsThePipeline(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	id := component.MustNewIDWithName("tailsift", "backend")
	ef := tailsiftexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*tailsiftexporter.Config)
	ecfg.Members.Static = addrs
	ecfg.GRPC.TLS.Insecure = true
	require.NoError(t, confmap.Validate(ecfg))
	eset := exportertest.NewNopSettings(component.MustNewType("tailsift"))
	eset.ID = id
	exp, err := ef.CreateTraces(t.Context(), eset, ecfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })

	cfg := testConfig()
	cfg.Output.Exporter = &id
	h := newHarness(t, cfg, nil)
	for n := uint64(1); n <= 20; n++ {
		tr := errorTrace(n)
		if n%2 == 0 {
			tr[1].Status = ptrace.StatusCodeOk // dropped
		}
		h.send(tr...)
	}
	h.advance(3 * time.Second) // quiet
	h.advance(time.Second)     // the output batch
	require.Eventually(t, func() bool { return gws.Count() >= 30 }, 10*time.Second, 5*time.Millisecond)
	got := gws.Snapshot()
	assert.Len(t, got, 30, "3 spans of each of the 10 error traces")
	kept := map[[16]byte]int{}
	for _, rs := range got {
		require.Len(t, rs, 1, "a span delivered twice")
		kept[rs[0].TraceID]++
	}
	for n := uint64(1); n <= 20; n++ {
		want := 0
		if n%2 == 1 {
			want = 3
		}
		assert.Equal(t, want, kept[traceID(n)], "trace %d", n)
	}
	assert.Zero(t, h.sink.SpanCount(), "nothing goes down the pipeline")
}
