package tracebuf

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/store/storetest"
)

// BenchmarkIngestStorePaced is BenchmarkIngestStore at the pace of an
// end-to-end run (bench-e2e section B: 10 000 spans/s of the benchmark
// workload, one request at a time, the process idle in between), so that
// what the store adds when it has to be woken counts: the shard's
// goroutine's and the writer's wake-ups, a block per wake-up, the timer's
// decisions. Store off and on, in the same run:
//
//	go test -run='^$' -bench=IngestStorePaced -benchtime=1000x -count=4 ./internal/tracebuf/
func BenchmarkIngestStorePaced(b *testing.B) {
	const rate = 10_000 // spans/s
	w := storetest.Record(b, 20_000, 5*time.Second)
	per := time.Duration(float64(time.Second) * float64(w.Total) / float64(len(w.Requests)) / rate)
	for _, comp := range []string{"off", store.CompressionZstd, store.CompressionS2, store.CompressionS2Col} {
		b.Run("store="+comp, func(b *testing.B) {
			buf, st := storeBenchBuffer(b, comp)
			ctx := context.Background()
			b.ReportAllocs()
			runtime.GC()
			cpu := storetest.CPU()
			start, n := time.Now(), 0
			spans := replay(ctx, b, buf, w, func() {
				n++
				time.Sleep(time.Until(start.Add(time.Duration(n) * per)))
			})
			cpu = storetest.CPU() - cpu // before the shutdown: its flush is not a request's cost
			_ = buf.Shutdown(ctx)
			buf.CloseStore()
			if st != nil {
				b.ReportMetric(float64(st.Stats().Dropped.Load()), "dropped-records")
				_ = st.Close()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(spans), "cpu-ns/span")
		})
	}
}
