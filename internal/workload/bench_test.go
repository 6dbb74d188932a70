package workload

import (
	"testing"
)

// BenchmarkPatchAndEncode measures the per-request work of a send: building
// the ExportTraceServiceRequest bytes from the pre-encoded spans (framing,
// copy, in-place patch of trace IDs, timestamps and seq) into a reused
// buffer. It reports ns/span.
func BenchmarkPatchAndEncode(b *testing.B) {
	g, st := generate(b, Config{Seed: 1, Rate: 20000, Templates: 200}, 20000)
	reqs := st.reqs
	buf := make([]byte, 0, 1<<20)
	spans := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := reqs[i%len(reqs)]
		buf = g.AppendRequest(buf[:0], r, 1_750_000_000_000_000_000+int64(i))
		spans += r.Spans
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	b.ReportMetric(float64(spans)/float64(b.N), "spans/op")
}

// BenchmarkGenerate measures the scheduling work per span: starting trace
// instances, running the virtual-time event queue and forming the batches
// (everything Next does), excluding encoding.
func BenchmarkGenerate(b *testing.B) {
	g, err := NewGenerator(Config{Seed: 1, Rate: 20000, Templates: 200})
	if err != nil {
		b.Fatal(err)
	}
	spans := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		spans += g.Next().Spans
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
}
