package otlpguardtest

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ValueDepth returns how deeply v nests: 1 for a scalar or an empty map or
// slice, one more than its deepest element otherwise. It recurses, so it is
// for the small values of tests and fuzzing only.
func ValueDepth(v pcommon.Value) int {
	deepest := 0
	switch v.Type() {
	case pcommon.ValueTypeMap:
		for _, e := range v.Map().All() {
			deepest = max(deepest, ValueDepth(e))
		}
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			deepest = max(deepest, ValueDepth(e))
		}
	}
	return deepest + 1
}

// MapDepth returns the depth of the deepest value of attributes m.
func MapDepth(m pcommon.Map) int {
	deepest := 0
	for _, v := range m.All() {
		deepest = max(deepest, ValueDepth(v))
	}
	return deepest
}

// TracesDepth returns the depth of the deepest AnyValue in td.
func TracesDepth(td ptrace.Traces) int {
	d := 0
	for _, rs := range td.ResourceSpans().All() {
		d = max(d, MapDepth(rs.Resource().Attributes()))
		for _, ss := range rs.ScopeSpans().All() {
			d = max(d, MapDepth(ss.Scope().Attributes()))
			for _, s := range ss.Spans().All() {
				d = max(d, MapDepth(s.Attributes()))
				for _, e := range s.Events().All() {
					d = max(d, MapDepth(e.Attributes()))
				}
				for _, l := range s.Links().All() {
					d = max(d, MapDepth(l.Attributes()))
				}
			}
		}
	}
	return d
}

// LogsDepth returns the depth of the deepest AnyValue in ld.
func LogsDepth(ld plog.Logs) int {
	d := 0
	for _, rl := range ld.ResourceLogs().All() {
		d = max(d, MapDepth(rl.Resource().Attributes()))
		for _, sl := range rl.ScopeLogs().All() {
			d = max(d, MapDepth(sl.Scope().Attributes()))
			for _, lr := range sl.LogRecords().All() {
				d = max(d, MapDepth(lr.Attributes()), ValueDepth(lr.Body()))
			}
		}
	}
	return d
}

// MetricsDepth returns the depth of the deepest AnyValue in md.
func MetricsDepth(md pmetric.Metrics) int {
	d := 0
	for _, rm := range md.ResourceMetrics().All() {
		d = max(d, MapDepth(rm.Resource().Attributes()))
		for _, sm := range rm.ScopeMetrics().All() {
			d = max(d, MapDepth(sm.Scope().Attributes()))
			for _, m := range sm.Metrics().All() {
				d = max(d, MapDepth(m.Metadata()), metricDepth(m))
			}
		}
	}
	return d
}

func metricDepth(m pmetric.Metric) int {
	d := 0
	exemplars := func(es pmetric.ExemplarSlice) {
		for _, e := range es.All() {
			d = max(d, MapDepth(e.FilteredAttributes()))
		}
	}
	numberPoints := func(points pmetric.NumberDataPointSlice) {
		for _, p := range points.All() {
			d = max(d, MapDepth(p.Attributes()))
			exemplars(p.Exemplars())
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		numberPoints(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		numberPoints(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		for _, p := range m.Histogram().DataPoints().All() {
			d = max(d, MapDepth(p.Attributes()))
			exemplars(p.Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, p := range m.ExponentialHistogram().DataPoints().All() {
			d = max(d, MapDepth(p.Attributes()))
			exemplars(p.Exemplars())
		}
	case pmetric.MetricTypeSummary:
		for _, p := range m.Summary().DataPoints().All() {
			d = max(d, MapDepth(p.Attributes()))
		}
	}
	return d
}

// FillNested sets v to a value nested depth levels deep (v itself is level
// 1), alternating maps and slices, built through the pdata API.
func FillNested(v pcommon.Value, depth int) {
	for i := 1; i < depth; i++ {
		if i%2 == 1 {
			v = v.SetEmptyMap().PutEmpty("k")
		} else {
			v = v.SetEmptySlice().AppendEmpty()
		}
	}
	v.SetInt(1)
}
