package wire_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/internal/workload"
)

// BenchmarkScanShapes scans the requests of the load generator's two
// workloads (recorded at 24 000 spans/s, 60 000 spans): the benchmark's
// (10 attributes per span, ~530 B/span, several ResourceSpans per request)
// and the SDK-shaped one (one BatchSpanProcessor batch per request, 4
// attributes per span, ~215 B/span), where the per-span costs that do not
// scale with attributes weigh most.
func BenchmarkScanShapes(b *testing.B) {
	for _, shape := range []string{workload.ShapeBench, workload.ShapeSDK} {
		b.Run("shape="+shape, func(b *testing.B) {
			cfg := workload.Config{Seed: 7, Rate: 24000, Duration: 2500 * time.Millisecond, Shape: shape, Templates: 300}
			rec, err := workload.Record(cfg, time.Unix(1_750_000_000, 0))
			require.NoError(b, err)
			var batch wire.Batch
			spans, bytes := 0, 0
			b.ReportAllocs()
			runtime.GC() // the recording's garbage is not the scan's cost
			cpu0 := storetest.CPU()
			for i := 0; b.Loop(); i++ {
				j := i % len(rec.Requests)
				batch.Reset()
				if err := wire.Scan(rec.Requests[j], &batch); err != nil {
					b.Fatal(err)
				}
				spans += len(batch.Spans)
				bytes += len(rec.Requests[j])
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
			// Process CPU: steadier than wall time on a shared machine.
			b.ReportMetric(float64(storetest.CPU()-cpu0)/float64(spans), "cpu-ns/span")
			b.ReportMetric(float64(bytes)/float64(spans), "B/span")
		})
	}
}
