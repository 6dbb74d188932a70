package tracebuf

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/red"
	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/internal/wire"
)

// BenchmarkIngestRED measures the fast path's ingest (IngestOwned, as the
// receiver calls it, shards and decisions included) of the benchmark
// workload without and with RED metrics (the Accepted hook feeding a
// red.Table), reporting the CPU the whole process used per span. red=on
// also reports red-cpu-ns/span, its difference with red=off of the same
// run, and on/off, their ratio (target: the difference ≤ 300 ns/span).
//
//	go test -run='^$' -bench=IngestRED -benchtime=20000x -count=3 ./internal/tracebuf/
func BenchmarkIngestRED(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	var off float64 // cpu-ns/span of red=off in this run
	for _, on := range []bool{false, true} {
		name := "red=off"
		if on {
			name = "red=on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Shards = 1
			set := Settings{}
			if on {
				table := red.NewTable(red.DefaultConfig(), 0)
				set.Accepted = func(batch *wire.Batch) { table.Observe(batch) }
			}
			buf, err := New(cfg, func(context.Context, ptrace.Traces) error { return nil }, set)
			if err != nil {
				b.Fatal(err)
			}
			buf.Start()
			ctx := context.Background()
			b.ReportAllocs()
			cpu := storetest.CPU()
			spans := replay(ctx, b, buf, w, nil)
			_ = buf.Sync(ctx)
			_ = buf.Shutdown(ctx)
			perSpan := float64((storetest.CPU() - cpu).Nanoseconds()) / float64(spans)
			b.ReportMetric(perSpan, "cpu-ns/span")
			if !on {
				off = perSpan
			} else if off > 0 {
				b.ReportMetric(perSpan-off, "red-cpu-ns/span")
				b.ReportMetric(perSpan/off, "on/off")
			}
		})
	}
}
