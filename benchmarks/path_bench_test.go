//go:build unix

package benchmarks

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkProcessorPath measures the whole processor path in process, as
// the end-to-end processor run has it (otlp → tailsift → otlp_grpc) but
// without the network: each iteration replays the workload as the otlp
// receiver hands it on (a pdata decode of every request), into a fresh
// tailsift processor (one shard, the benchmark's policies and 30 s waits),
// then shuts it down, which decides every buffered trace and hands the kept
// ones, as pdata, to a next consumer that encodes them as otlp_grpc does.
// Self-metrics go to a real OTel SDK meter provider. path=baseline is the
// decode alone (otlp → nop), so tailsift − baseline is the processor's added
// CPU. Run it with -cpu 1 and a fixed -benchtime (e.g. 2x):
//
//	TAILSIFT_BENCH_SHAPE=sdk go test -run '^$' -bench ProcessorPath -cpu 1 -benchtime 2x -count 8
//
// The recorded requests are copied off the Go heap first, so that the GC
// paces on the path's own heap, as in the collector.
//
// Metrics: cpu-ns/span (process CPU over the iteration: everything,
// including the shard goroutines and GC), gc/kspan (GC cycles per 1000
// spans), alloc-B/span and kept/span.
func BenchmarkProcessorPath(b *testing.B) {
	w := benchWorkload(b)
	if !offHeapDone {
		w.Requests, offHeapDone = offHeap(b, w.Requests), true
	}
	for _, path := range []string{"baseline", "tailsift"} {
		b.Run("path="+path, func(b *testing.B) {
			runPath(b, w, path == "tailsift")
		})
	}
}

// runPath is BenchmarkProcessorPath's body: without withProcessor, the
// decode alone (path=baseline).
func runPath(b benchT, w *benchLoad, withProcessor bool) {
	var im impl
	for _, c := range implRegistry {
		if c.name == "tailsift" {
			im = c
		}
	}
	var (
		cpu         time.Duration
		gcs         uint32
		allocB      uint64
		spans, kept int64
		ms0, ms1    runtime.MemStats
	)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		var p consumer.Traces
		var stop func()
		sink := newCountingSink()
		encode, _ := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
			var m ptrace.ProtoMarshaler
			if _, err := m.MarshalTraces(td); err != nil {
				return err
			}
			return sink.ConsumeTraces(ctx, td)
		})
		if withProcessor {
			tel := componenttest.NewTelemetry()
			tp := newProcessorWith(b, im, 1, tel.NewTelemetrySettings(), encode)
			p = tp
			stop = func() {
				shutdown(b, tp)
				_ = tel.Shutdown(ctx)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		c0, _ := processCPU()
		b.StartTimer()
		for i, req := range w.Requests {
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
			if err != nil {
				b.Fatalf("decode request %d: %v", i, err)
			}
			if p != nil {
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatalf("ConsumeTraces: %v", err)
				}
			}
			spans += int64(w.Spans[i])
		}
		if stop != nil {
			stop() // decides every buffered trace and hands the kept ones on
		}
		b.StopTimer()
		c1, _ := processCPU()
		runtime.ReadMemStats(&ms1)
		cpu += c1 - c0
		gcs += ms1.NumGC - ms0.NumGC
		allocB += ms1.TotalAlloc - ms0.TotalAlloc
		kept += sink.spans.Load()
		b.StartTimer()
	}
	fs := float64(spans)
	b.ReportMetric(float64(cpu.Nanoseconds())/fs, "cpu-ns/span")
	b.ReportMetric(float64(gcs)*1000/fs, "gc/kspan")
	b.ReportMetric(float64(allocB)/fs, "alloc-B/span")
	b.ReportMetric(float64(kept)/fs, "kept/span")
}

// TestProcessorPathSmoke runs BenchmarkProcessorPath's body once per path on
// a tiny workload, as TestBenchmarksSmoke does for the others: the decode-only
// baseline forwards nothing, the processor path forwards the kept traces.
func TestProcessorPathSmoke(t *testing.T) {
	cfg := benchWorkloadConfig(2000)
	cfg.Templates, cfg.MaxSpans = 50, 120
	w := recordWorkload(cfg)
	for _, withProcessor := range []bool{false, true} {
		fb := &fakeB{T: t, iters: 1, metrics: map[string]float64{}}
		runPath(fb, w, withProcessor)
		assert.Greater(t, fb.metrics["cpu-ns/span"], 0.0, "cpu-ns/span")
		assert.Greater(t, fb.metrics["alloc-B/span"], 0.0, "alloc-B/span")
		if withProcessor {
			// The policies keep 5 % at random plus the error and slow traces.
			assert.Greater(t, fb.metrics["kept/span"], 0.0, "kept/span")
			assert.Less(t, fb.metrics["kept/span"], 0.5, "kept/span")
		} else {
			assert.Zero(t, fb.metrics["kept/span"], "kept/span")
		}
	}
}

// offHeapDone is set once the workload's requests were moved off the heap.
var offHeapDone bool

// offHeap copies reqs into one anonymous mapping outside the Go heap (never
// unmapped: the benchmark binary exits soon enough).
func offHeap(tb testing.TB, reqs [][]byte) [][]byte {
	tb.Helper()
	total := 0
	for _, r := range reqs {
		total += len(r)
	}
	mem, err := syscall.Mmap(-1, 0, max(total, 1), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		tb.Fatalf("map the requests: %v", err)
	}
	out := make([][]byte, len(reqs))
	for i, r := range reqs {
		out[i] = mem[:len(r):len(r)]
		copy(out[i], r)
		mem = mem[len(r):]
	}
	return out
}
