package tailsiftprocessor

import (
	"context"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// BenchmarkConsumeTracesStorePaced is the processor path at the pace of an
// end-to-end run (bench-e2e section B: 10 000 spans/s of the benchmark
// workload, one request at a time, the process idle in between), store off
// and on. Each request is decoded from OTLP first, as the otlp receiver
// does, and its CPU counted with the rest. Same run:
//
//	go test -run='^$' -bench=ConsumeTracesStorePaced -benchtime=1000x -count=4 ./processor/tailsiftprocessor/
func BenchmarkConsumeTracesStorePaced(b *testing.B) {
	const rate = 10_000 // spans/s
	w := storetest.Record(b, 20_000, 5*time.Second)
	per := time.Duration(float64(time.Second) * float64(w.Total) / float64(len(w.Requests)) / rate)
	for _, comp := range []string{"off", store.CompressionZstd, store.CompressionS2} {
		b.Run("store="+comp, func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.Shards = 1
			p, err := newProcessor(processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			var st *store.Store
			if comp != "off" {
				if st, err = store.Open(store.Options{Dir: b.TempDir(), Retention: time.Hour, MaxBytes: 1 << 40, Compression: comp}); err != nil {
					b.Fatal(err)
				}
				p.buf.AttachStore(st)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var um ptrace.ProtoUnmarshaler
			b.ReportAllocs()
			runtime.GC()
			cpu := storetest.CPU()
			start, i, spans := time.Now(), 0, 0
			for b.Loop() {
				k := i % len(w.Requests)
				td, err := um.UnmarshalTraces(w.Requests[k])
				if err != nil {
					b.Fatal(err)
				}
				renumberAll(td, uint32(i/len(w.Requests)))
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
				spans += w.Spans[k]
				i++
				time.Sleep(time.Until(start.Add(time.Duration(i) * per)))
			}
			cpu = storetest.CPU() - cpu // before the shutdown: its flush is not a request's cost
			_ = p.Shutdown(ctx)
			if st != nil {
				b.ReportMetric(float64(st.Stats().Dropped.Load()), "dropped-records")
				_ = st.Close()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(spans), "cpu-ns/span")
		})
	}
}

// renumberAll sets bytes 2–5 of every span's trace ID to round, so that
// each replay of a recording brings new traces.
func renumberAll(td ptrace.Traces, round uint32) {
	if round == 0 {
		return
	}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				id := sp.TraceID()
				id[2], id[3], id[4], id[5] = byte(round), byte(round>>8), byte(round>>16), byte(round>>24)
				sp.SetTraceID(id)
			}
		}
	}
}
