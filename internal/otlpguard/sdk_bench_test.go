package otlpguard

import (
	"testing"
)

// BenchmarkCheckSDK measures Check on workload.ShapeSDK's traces requests
// (what services instrumented with an OpenTelemetry SDK send), next to
// checkReference, the walk before its fast paths, in the same process; an
// op walks every request of the recording once.
//
//	go test -run='^$' -bench=CheckSDK -count=8 ./internal/otlpguard/ | tee sdk.txt
//	benchstat -col /op sdk.txt
func BenchmarkCheckSDK(b *testing.B) {
	reqs := sdkRequests(b, 20)
	bytes, spans := 0, 0
	for _, r := range reqs {
		bytes += len(r)
	}
	spans = sdkSpans(b, reqs)
	for _, bc := range []struct {
		name  string
		check func(Signal, []byte) error
	}{{"check", Check}, {"reference", checkReference}} {
		b.Run("op="+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(bytes))
			for b.Loop() {
				for _, r := range reqs {
					if err := bc.check(Traces, r); err != nil {
						b.Fatal(err)
					}
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/float64(bytes), "ns/byte")
			b.ReportMetric(ns/1000/float64(spans), "µs/span")
		})
	}
}
