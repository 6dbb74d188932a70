package selfmetrics

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// The per-route completion counts are summed per route, with at most
// maxRouteAttrs routes of their own and the rest under "other".
func TestRouteCompletion(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	m := tel.NewTelemetrySettings().MeterProvider.Meter("test")
	var in Instruments
	var err error
	in.RouteTraces, err = m.Int64Counter("route_traces_decided")
	require.NoError(t, err)
	in.RoutePartial, err = m.Int64Counter("route_partial_traces")
	require.NoError(t, err)
	in.RouteLate, err = m.Int64Counter("route_late_spans")
	require.NoError(t, err)
	o := NewObserver(in).(tracebuf.RouteObserver)

	o.RouteCompletion(tracebuf.RouteCompletion{Route: "svc / GET /a", Traces: 10, PartialTraces: 2, LateSpans: 3})
	o.RouteCompletion(tracebuf.RouteCompletion{Route: "svc / GET /a", Traces: 5, PartialTraces: 1, LateSpans: 1})
	for i := range maxRouteAttrs + 5 {
		o.RouteCompletion(tracebuf.RouteCompletion{Route: fmt.Sprintf("r%03d", i), Traces: 1, PartialTraces: 1, LateSpans: 1})
	}

	sums := func(name string) map[string]int64 {
		got, err := tel.GetMetric(name)
		require.NoError(t, err)
		out := map[string]int64{}
		for _, dp := range got.Data.(metricdata.Sum[int64]).DataPoints {
			v, _ := dp.Attributes.Value(attribute.Key("route"))
			out[v.AsString()] = dp.Value
		}
		return out
	}
	traces, partial, late := sums("route_traces_decided"), sums("route_partial_traces"), sums("route_late_spans")
	assert.Equal(t, int64(15), traces["svc / GET /a"])
	assert.Equal(t, int64(3), partial["svc / GET /a"])
	assert.Equal(t, int64(4), late["svc / GET /a"])
	assert.Len(t, traces, maxRouteAttrs+1, "the routes of their own and other")
	assert.Equal(t, int64(6), traces["other"], "the routes beyond the first 100")
	assert.Equal(t, int64(1), partial["r000"])
}
