package red

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
)

// The names and attribute keys spanmetrics (v0.161.0) writes by default.
const (
	MetricCalls    = "traces.span.metrics.calls"
	MetricDuration = "traces.span.metrics.duration"
	keyService     = "service.name"
	keySpanName    = "span.name"
	keySpanKind    = "span.kind"
	keyStatusCode  = "status.code"
	keyOverflow    = "otel.metric.overflow"
	scopeName      = "github.com/tailsift/tailsift/internal/red"
)

var (
	kindNames = [...]string{
		"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
		"SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
	}
	statusNames = [...]string{"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"}
)

// Kept records exemplars from the spans of kept traces: each span becomes
// its series' exemplar (the last one wins until the next Flush), so that
// an exemplar always points to a trace that was kept. Spans of series the
// table does not hold are skipped.
func (t *Table) Kept(td ptrace.Traces) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		svc, ok := rs.Resource().Attributes().Get(keyService)
		if !ok {
			continue
		}
		service := svc.Str()
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				t.exemplar([]byte(service), []byte(sp.Name()), uint8(sp.Kind()), uint8(sp.Status().Code()),
					[16]byte(sp.TraceID()), [8]byte(sp.SpanID()), uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp()))
			}
		}
	}
}

// KeptBatch is Kept for the scan of an encoded request of kept spans (a
// tailsift buffer's wire output, which builds no pdata).
func (t *Table) KeptBatch(b *wire.Batch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	forEachServiceSpan(b, func(service []byte, sp *wire.Span) {
		t.exemplar(service, sp.Name, sp.Kind, sp.Status, sp.TraceID, sp.SpanID, sp.Start, sp.End)
	})
}

// exemplar makes a span its series' exemplar, when the table holds the
// series. Called under mu.
func (t *Table) exemplar(service, name []byte, kind, status uint8, trace [16]byte, span [8]byte, start, end uint64) {
	idx, ok := t.index[string(t.makeKey(service, name, kind, status))]
	if !ok {
		return
	}
	s := &t.list[idx]
	s.hasExemplar, s.exTrace, s.exSpan, s.exTime = true, trace, span, end
	s.exMs = 0
	if end > start {
		s.exMs = float64(end-start) / 1e6
	}
}

// Flush returns the cumulative metrics of every series at nowNs (Unix
// nanoseconds), one resource per service, and forgets the exemplars it
// wrote. It returns empty metrics when nothing was observed.
func (t *Table) Flush(nowNs uint64) pmetric.Metrics {
	t.mu.Lock()
	defer t.mu.Unlock()
	md := pmetric.NewMetrics()
	byService := make(map[string]pmetric.MetricSlice)
	slice := func(service string) pmetric.MetricSlice {
		ms, ok := byService[service]
		if !ok {
			rm := md.ResourceMetrics().AppendEmpty()
			if service != "" {
				rm.Resource().Attributes().PutStr(keyService, service)
			}
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(scopeName)
			ms = sm.Metrics()
			calls := ms.AppendEmpty()
			calls.SetName(MetricCalls)
			sum := calls.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dur := ms.AppendEmpty()
			dur.SetName(MetricDuration)
			dur.SetUnit("ms")
			dur.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			byService[service] = ms
		}
		return ms
	}
	write := func(idx int) {
		s := &t.list[idx]
		if s.calls == 0 {
			return // the overflow series, unused
		}
		service := s.service
		ms := slice(service)
		cdp := ms.At(0).Sum().DataPoints().AppendEmpty()
		hdp := ms.At(1).Histogram().DataPoints().AppendEmpty()
		for _, attrs := range []pcommon.Map{cdp.Attributes(), hdp.Attributes()} {
			if s.overflow {
				attrs.PutBool(keyOverflow, true)
				continue
			}
			attrs.PutStr(keyService, s.service)
			attrs.PutStr(keySpanName, s.name)
			attrs.PutStr(keySpanKind, enumName(kindNames[:], s.kind))
			attrs.PutStr(keyStatusCode, enumName(statusNames[:], s.status))
		}
		cdp.SetStartTimestamp(pcommon.Timestamp(t.start))
		cdp.SetTimestamp(pcommon.Timestamp(nowNs))
		cdp.SetIntValue(int64(s.calls))
		hdp.SetStartTimestamp(pcommon.Timestamp(t.start))
		hdp.SetTimestamp(pcommon.Timestamp(nowNs))
		hdp.SetCount(s.calls)
		hdp.SetSum(s.sumMs)
		hdp.ExplicitBounds().FromRaw(t.boundsMs)
		hdp.BucketCounts().FromRaw(t.bucketsOf(idx))
		if s.hasExemplar {
			for _, ex := range []pmetric.Exemplar{cdp.Exemplars().AppendEmpty(), hdp.Exemplars().AppendEmpty()} {
				ex.SetTraceID(s.exTrace)
				ex.SetSpanID(s.exSpan)
				ex.SetDoubleValue(s.exMs)
				ex.SetTimestamp(pcommon.Timestamp(s.exTime))
			}
			s.hasExemplar = false
		}
	}
	for idx := range t.list {
		write(idx)
	}
	return md
}

func enumName(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return names[0]
}
