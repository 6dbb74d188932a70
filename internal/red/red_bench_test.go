package red

import (
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/internal/wire"
)

// BenchmarkObserve measures what RED adds to the fast path per span:
// Table.Observe of each scanned request of the benchmark workload, timed
// in the same loop as the wire.Scan the buffer does anyway, so that
// red/scan is a same-run ratio. red-ns/span is the absolute cost (target
// ≤ 300).
//
//	go test -run='^$' -bench=Observe -count=6 ./internal/red/ | tee new.txt; benchstat new.txt
func BenchmarkObserve(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	table := NewTable(DefaultConfig(), 0)
	var batch wire.Batch
	var scan, red time.Duration
	spans, bytes := 0, 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := w.Requests[i%len(w.Requests)]
		i++
		batch.Reset()
		t0 := time.Now()
		if err := wire.Scan(req, &batch); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		table.Observe(&batch)
		red += time.Since(t1)
		scan += t1.Sub(t0)
		spans += len(batch.Spans)
		bytes += len(req)
	}
	b.ReportMetric(float64(red.Nanoseconds())/float64(spans), "red-ns/span")
	b.ReportMetric(float64(scan.Nanoseconds())/float64(spans), "scan-ns/span")
	b.ReportMetric(float64(red)/float64(scan), "red/scan")
	b.ReportMetric(float64(spans)/float64(b.N), "spans/op")
	b.SetBytes(int64(bytes / max(b.N, 1)))
	b.ReportMetric(float64(len(table.index)), "series")
}
