package tracebuftest

import (
	"encoding/binary"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// T0 is when the spans Batch builds start.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Span describes one span of a test trace.
type Span struct {
	Trace  uint64 // trace number; the trace ID is derived from it
	Span   uint64 // span number within the trace; 1 is the root
	Parent uint64 // 0 for the root
	Dur    time.Duration
	Status ptrace.StatusCode
	TS     string         // tracestate
	Attrs  map[string]any // more span attributes
}

// TraceID is the trace ID of trace number n.
func TraceID(n uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], n*0x9E3779B97F4A7C15+1)
	binary.BigEndian.PutUint64(id[8:], n*0xBF58476D1CE4E5B9+7)
	return id
}

// SpanID is the span ID of span number span of trace number trace.
func SpanID(trace, span uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], trace<<16|span)
	return id
}

// Batch builds one ptrace.Traces holding the spans under two resources
// (services frontend and backend, by span number), each with a scope
// "test". A span starts at T0 and lasts Dur (10 ms when 0).
func Batch(specs ...Span) ptrace.Traces {
	td := ptrace.NewTraces()
	var ss [2]ptrace.SpanSlice
	for i := range ss {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", []string{"frontend", "backend"}[i])
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("test")
		ss[i] = sc.Spans()
	}
	for _, s := range specs {
		sp := ss[s.Span%2].AppendEmpty()
		sp.SetTraceID(TraceID(s.Trace))
		sp.SetSpanID(SpanID(s.Trace, s.Span))
		if s.Parent != 0 {
			sp.SetParentSpanID(SpanID(s.Trace, s.Parent))
		}
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(T0))
		d := s.Dur
		if d == 0 {
			d = 10 * time.Millisecond
		}
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(T0.Add(d)))
		sp.Status().SetCode(s.Status)
		sp.TraceState().FromRaw(s.TS)
		sp.Attributes().PutStr("http.route", "/api/items/{id}")
		if s.Attrs != nil {
			_ = sp.Attributes().FromRaw(s.Attrs)
		}
	}
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		return rs.ScopeSpans().At(0).Spans().Len() == 0
	})
	return td
}

// SpansOf returns the spans of trace id in tds, by span number (the low 16
// bits of the span ID, as SpanID builds it).
func SpansOf(tds []ptrace.Traces, id pcommon.TraceID) map[uint64]ptrace.Span {
	out := map[uint64]ptrace.Span{}
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					if ss.At(k).TraceID() == id {
						sid := ss.At(k).SpanID()
						out[binary.BigEndian.Uint64(sid[:])&0xffff] = ss.At(k)
					}
				}
			}
		}
	}
	return out
}
