package main

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tailsift/tailsift/internal/workload"
)

// BenchmarkRecord measures the per-request work after decoding: 50 traces
// of 10 spans, each span with the two labels, 6 other attributes and a th.
func BenchmarkRecord(b *testing.B) {
	var spans []span
	for seq := range int64(50) {
		spans = append(spans, labelled(seq, workload.ClassFast, 10, "ot=th:f333")...)
	}
	td := traces(spans...)
	ss := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < ss.Len(); i++ {
		a := ss.At(i).Attributes()
		a.PutStr("http.method", "GET")
		a.PutStr("http.route", "/api/v1/items/{id}")
		a.PutInt("http.status_code", 200)
		a.PutStr("net.peer.name", "svc-03")
		a.PutBool("cache.hit", true)
		a.PutDouble("work.units", 1.5)
	}
	rec := newRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec.record(td, int64(i)) // same IDs: after the first, all duplicates
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*ss.Len()), "ns/span")
}

// BenchmarkDecodeAndRecord adds protobuf decoding, as the gRPC and HTTP
// paths do, with fresh trace IDs each time.
func BenchmarkDecodeAndRecord(b *testing.B) {
	rec := newRecorder()
	const per = 500
	bodies := make([][]byte, 64)
	for k := range bodies {
		var spans []span
		for seq := range int64(50) {
			spans = append(spans, labelled(int64(k)*50+seq, workload.ClassFast, 10, "ot=th:f333")...)
		}
		body, _ := ptraceotlp.NewExportRequestFromTraces(traces(spans...)).MarshalProto()
		bodies[k] = body
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		rec.record(req.Traces(), int64(i))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/span")
}
