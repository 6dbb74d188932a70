package store

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/store/storetest"
)

// BenchmarkAppend records the benchmark workload (20 000 spans/s for 5 s,
// replayed in a loop) and reports, per span: the CPU the whole process used
// (caller and writer goroutine: framing, compression, writes, index), the
// bytes on disk, and the write amplification (bytes written per byte of
// OTLP handed in).
//
//	go test -run='^$' -bench=Append -benchtime=20000x ./internal/store/
//
// A block holds what the writer found queued when it woke: with the loop
// saturating the writer (batch=queued) blocks are large; with batch=request
// the loop waits for each request to be written, so each block holds one
// request, as at a low request rate (the worst case for compression);
// batch=decided is batch=request with a decision on each of the request's
// traces queued behind it, as the fast path's Ingest call queues the
// decisions it takes (in one block with the request).
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []string{"queued", "request", "decided"} {
		for _, comp := range []string{CompressionS2, CompressionZstd} {
			b.Run("batch="+batch+"/compression="+comp, func(b *testing.B) { benchAppend(b, comp, batch) })
		}
	}
}

func benchAppend(b *testing.B, comp, batch string) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	s, err := Open(Options{Dir: b.TempDir(), Retention: time.Hour, MaxBytes: 1 << 40, Compression: comp})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	spans := 0
	cpu := storetest.CPU()
	i := 0
	for b.Loop() {
		k := i % len(w.Requests)
		for !s.AppendSpans(w.IDs[k], w.Requests[k]) {
			_ = s.Sync(ctx) // queue full: wait for the writer (never done by ingest)
		}
		if batch == "decided" {
			decs := make([]Decision, len(w.IDs[k]))
			for j := range decs {
				decs[j] = Decision{Keep: j%20 == 0, Policy: "baseline", Reason: "quiet"}
			}
			s.AppendDecisions(w.IDs[k], decs)
		}
		if batch != "queued" {
			_ = s.Sync(ctx)
		}
		spans += w.Spans[k]
		i++
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	cpu = storetest.CPU() - cpu
	st := s.Stats()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(spans), "cpu-ns/span")
	b.ReportMetric(float64(st.DiskBytes.Load())/float64(spans), "disk-B/span")
	b.ReportMetric(float64(w.Wire)/float64(w.Total), "wire-B/span")
	b.ReportMetric(float64(st.BlockBytes.Load())/float64(st.BytesIn.Load()), "write-amp")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTraceUnderLoad fetches random recorded traces by ID while one
// goroutine records the workload as fast as the store writes it, and
// reports the p50 and p99 latency of a fetch.
//
//	go test -run='^$' -bench=TraceUnderLoad -benchtime=300x ./internal/store/
func BenchmarkTraceUnderLoad(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	s, err := Open(Options{Dir: b.TempDir(), Retention: time.Hour, MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	for k := range w.Requests {
		for !s.AppendSpans(w.IDs[k], w.Requests[k]) {
			_ = s.Sync(ctx)
		}
	}
	_ = s.Sync(ctx)
	var stop atomic.Bool
	var load sync.WaitGroup
	var loaded atomic.Int64
	load.Go(func() {
		for i := 0; !stop.Load(); i++ {
			k := i % len(w.Requests)
			// Other trace IDs than the fetched ones (the bytes are the
			// recording's): the load adds traces, it does not grow them.
			ids := slices.Clone(w.IDs[k])
			for j := range ids {
				ids[j][15] ^= byte(1 + i/len(w.Requests))
				ids[j][14] ^= 0x80
			}
			if s.AppendSpans(ids, w.Requests[k]) {
				loaded.Add(int64(w.Spans[k]))
			}
			for s.Queued() > 16<<20 && !stop.Load() {
				runtime.Gosched() // as fast as the store writes, no faster
			}
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	start := time.Now()
	for b.Loop() {
		ids := w.IDs[rng.IntN(len(w.IDs))]
		id := ids[rng.IntN(len(ids))]
		t0 := time.Now()
		if _, err := s.Trace(id); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	stop.Store(true)
	load.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(loaded.Load())/elapsed.Seconds(), "load-spans/s")
}
