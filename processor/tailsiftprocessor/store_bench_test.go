package tailsiftprocessor

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// BenchmarkConsumeTracesStore is BenchmarkConsumeTraces with the store off
// and on (storage: tailsift, s2 or zstd blocks), reporting the CPU the whole
// process used per span: the store's writer goroutine (write-ahead writes,
// compression) included. With the store on, the loop waits while the
// store's queue holds more than 16 MiB, so that it records everything.
// Compare the two in the same run:
//
//	go test -run='^$' -bench=ConsumeTracesStore -count=5 ./processor/tailsiftprocessor/
func BenchmarkConsumeTracesStore(b *testing.B) {
	for _, comp := range []string{"off", store.CompressionS2, store.CompressionZstd} {
		on := comp != "off"
		b.Run(fmt.Sprintf("store=%s", comp), func(b *testing.B) {
			batches := benchBatches(64, 40)
			spans := 0
			for _, td := range batches {
				spans += td.SpanCount()
			}
			cfg := createDefaultConfig().(*Config)
			cfg.Shards = 1
			cfg.Buffer.MaxBytes = 256 << 20
			p, err := newProcessor(processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			var st *store.Store
			if on {
				if st, err = store.Open(store.Options{Dir: b.TempDir(), Retention: time.Hour, MaxBytes: 1 << 40, Compression: comp}); err != nil {
					b.Fatal(err)
				}
				p.buf.AttachStore(st)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			cpu := storetest.CPU()
			i := 0
			for b.Loop() {
				td := batches[i%len(batches)]
				if i >= len(batches) {
					renumber(td, uint32(i/len(batches)))
				}
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
				i++
				// Offer no more than the store writes: a saturated store
				// drops records (counted), which would hide its cost.
				for st != nil && st.Queued() > 16<<20 {
					runtime.Gosched()
				}
			}
			_ = p.buf.Sync(ctx)
			if st != nil {
				_ = st.Close() // seals: its compression is counted
			}
			cpu = storetest.CPU() - cpu
			perBatch := float64(spans) / float64(len(batches))
			b.ReportMetric(float64(cpu.Nanoseconds())/(float64(i)*perBatch), "cpu-ns/span")
			if st != nil {
				b.ReportMetric(float64(st.Stats().Dropped.Load()), "dropped-records")
			}
			_ = p.Shutdown(ctx)
		})
	}
}
