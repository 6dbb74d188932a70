package tailsiftreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailsift/tailsift/internal/red"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// The receiver in a traces and a metrics pipeline is one component: it
// counts every span it accepts, kept or dropped, and its exemplars point
// to kept traces only, whether they leave through the pipeline or as
// bytes through output::exporter.
func TestREDFromEverySpanBeforeSampling(t *testing.T) {
	t.Run("pipeline", func(t *testing.T) { testREDFromEverySpan(t, false) })
	t.Run("output exporter", func(t *testing.T) { testREDFromEverySpan(t, true) })
}

func testREDFromEverySpan(t *testing.T, wireOut bool) {
	ctx := context.Background()
	f := NewFactory()
	cfg := testConfig()
	var gw *rawGateways
	if wireOut {
		var addrs []string
		gw, addrs = startRawGateways(t, 1)
		id := component.MustNewIDWithName("tailsift", "red")
		startExporter(t, id, addrs, nil)
		cfg.Output.Exporter = &id
	}
	set := receivertest.NewNopSettings(metadata.Type)
	traces, metrics := new(consumertest.TracesSink), new(consumertest.MetricsSink)
	rt, err := f.CreateTraces(ctx, set, cfg, traces)
	require.NoError(t, err)
	rm, err := f.CreateMetrics(ctx, set, cfg, metrics)
	require.NoError(t, err)
	require.Same(t, rt.(*tailsiftReceiver), rm.(*tailsiftReceiver), "one receiver for both pipelines")
	require.NoError(t, rt.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, rm.Start(ctx, componenttest.NewNopHost()), "the second Start is a no-op")

	g := &rig{t: t, r: rt.(*tailsiftReceiver)}
	conn, err := grpc.NewClient(g.r.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	g.conn = conn
	const n = 40
	for i := uint64(1); i <= n; i++ {
		tr := errorTrace(i)
		if i%2 == 0 {
			tr[1].Status = ptrace.StatusCodeOk // dropped: no policy keeps it
		}
		_, err = g.grpcExport(ctx, marshal(t, batch(tr...)))
		require.NoError(t, err)
	}
	require.NoError(t, conn.Close())
	require.NoError(t, rt.Shutdown(ctx))
	require.NoError(t, rm.Shutdown(ctx))

	out := traces.AllTraces()
	if wireOut {
		assert.Empty(t, out, "kept spans leave through output::exporter, not the pipeline")
		require.Eventually(t, func() bool { return gw.count() == 3*n/2 }, 10*time.Second, 5*time.Millisecond)
		out = gw.traces(t)
	}
	kept := make(map[pcommon.TraceID]bool)
	for _, td := range out {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					kept[sp.TraceID()] = true
				}
			}
		}
	}
	require.Len(t, kept, n/2, "the error traces are kept, the others dropped")

	require.NotEmpty(t, metrics.AllMetrics(), "the shutdown flush sends the metrics")
	md := metrics.AllMetrics()[len(metrics.AllMetrics())-1]
	var calls, errs int64
	exemplars := 0
	for _, rms := range md.ResourceMetrics().All() {
		for _, sm := range rms.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() != red.MetricCalls {
					continue
				}
				for _, dp := range m.Sum().DataPoints().All() {
					calls += dp.IntValue()
					if code, _ := dp.Attributes().Get("status.code"); code.Str() == "STATUS_CODE_ERROR" {
						errs += dp.IntValue()
					}
					for _, ex := range dp.Exemplars().All() {
						exemplars++
						assert.True(t, kept[ex.TraceID()], "exemplar of a dropped trace %v", ex.TraceID())
					}
				}
			}
		}
	}
	assert.Equal(t, int64(3*n), calls, "every span, kept or dropped")
	assert.Equal(t, int64(n/2), errs)
	assert.Positive(t, exemplars)
}

// A receiver only in a metrics pipeline counts the spans and drops every
// trace.
func TestREDWithoutTracesPipeline(t *testing.T) {
	ctx := context.Background()
	f := NewFactory()
	metrics := new(consumertest.MetricsSink)
	rm, err := f.CreateMetrics(ctx, receivertest.NewNopSettings(metadata.Type), testConfig(), metrics)
	require.NoError(t, err)
	require.NoError(t, rm.Start(ctx, componenttest.NewNopHost()))
	g := &rig{t: t, r: rm.(*tailsiftReceiver)}
	conn, err := grpc.NewClient(g.r.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	g.conn = conn
	_, err = g.grpcExport(ctx, marshal(t, batch(errorTrace(1)...)))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.NoError(t, rm.Shutdown(ctx))
	require.NotEmpty(t, metrics.AllMetrics())
	assert.Equal(t, 2*3, metrics.AllMetrics()[0].DataPointCount(), "calls and duration for each of 3 series")
}

func TestREDConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"interval", func(c *Config) { c.RED.Interval = 0 }, "red: interval: must be positive, got 0s"},
		{"max_series", func(c *Config) { c.RED.MaxSeries = -1 }, "red: max_series: must be positive, got -1"},
		{"buckets", func(c *Config) { c.RED.BucketsMs = []float64{5, 2} }, "red: buckets_ms: must be positive and strictly ascending, got [5 2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.modify(cfg)
			assert.EqualError(t, confmap.Validate(cfg), tt.want)
		})
	}
}
