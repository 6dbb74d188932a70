package benchmarks

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// benchT is the subset of *testing.B the benchmark bodies use. It lets the
// smoke test run the exact same bodies with a fake, bounded loop.
type benchT interface {
	testing.TB
	Loop() bool
	StartTimer()
	StopTimer()
	ReportAllocs()
	SetBytes(n int64)
	ReportMetric(n float64, unit string)
	Elapsed() time.Duration
}

// impl is one processor under test, configured only through a YAML-like map.
type impl struct {
	name    string
	factory func() processor.Factory
	config  func(shards int) map[string]any
}

// implRegistry is filled by the impl_*_test.go files, in benchmark order.
var implRegistry []impl

// policies are the three sampling policies shared by both processors.
func policies() []any {
	return []any{
		map[string]any{"name": "errors", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"ERROR"}}},
		map[string]any{"name": "slow", "type": "latency", "latency": map[string]any{"threshold_ms": 1000}},
		map[string]any{"name": "baseline", "type": "probabilistic", "probabilistic": map[string]any{"sampling_percentage": 5}},
	}
}

// countingSink is the next consumer: it counts forwarded spans without
// retaining them.
type countingSink struct {
	consumer.Traces
	spans atomic.Int64
}

func newCountingSink() *countingSink {
	s := &countingSink{}
	s.Traces, _ = consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		s.spans.Add(int64(td.SpanCount()))
		return nil
	})
	return s
}

func newProcessor(tb testing.TB, im impl, shards int, next consumer.Traces) processor.Traces {
	tb.Helper()
	return newProcessorWith(tb, im, shards, component.TelemetrySettings{}, next)
}

// newProcessorWith is newProcessor with tel as the processor's telemetry
// (a real meter provider, say) unless tel is the zero value.
func newProcessorWith(tb testing.TB, im impl, shards int, tel component.TelemetrySettings, next consumer.Traces) processor.Traces {
	tb.Helper()
	f := im.factory()
	set := processortest.NewNopSettings(f.Type())
	if tel.MeterProvider != nil {
		set.TelemetrySettings = tel
	}
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(im.config(shards)).Unmarshal(cfg); err != nil {
		tb.Fatalf("%s: unmarshal config: %v", im.name, err)
	}
	if err := confmap.Validate(cfg); err != nil {
		tb.Fatalf("%s: invalid config: %v", im.name, err)
	}
	p, err := f.CreateTraces(context.Background(), set, cfg, next)
	if err != nil {
		tb.Fatalf("%s: create: %v", im.name, err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		tb.Fatalf("%s: start: %v", im.name, err)
	}
	return p
}

func shutdown(tb testing.TB, c component.Component) time.Duration {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := c.Shutdown(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
	return time.Since(start)
}

// waitIdle waits until the process is idle, i.e. until the asynchronous
// shard goroutines (and the GC work they caused) have finished with
// everything enqueued so far: two consecutive ~5 ms windows in which the
// rest of the process (everything but the polling thread) used less than
// 10% of one CPU and no other thread was runnable. It returns how long the
// process stayed busy (the quiet windows are not counted) and false if it
// did not go idle within limit.
func waitIdle(limit time.Duration) (time.Duration, bool) {
	const window = 5 * time.Millisecond
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	otherCPU := func() time.Duration {
		p, _ := processCPU()
		return p - threadCPU()
	}
	if _, ok := processCPU(); !ok {
		time.Sleep(200 * time.Millisecond)
		return 0, true
	}
	start := time.Now()
	prev, prevT := otherCPU(), start
	quiet := 0
	var quietSince time.Time
	for {
		time.Sleep(window)
		cur, now := otherCPU(), time.Now()
		runnable, _ := otherRunnableThreads()
		if cur-prev < now.Sub(prevT)/10 && runnable == 0 {
			if quiet == 0 {
				quietSince = prevT
			}
			quiet++
			if quiet == 2 {
				return quietSince.Sub(start), true
			}
		} else {
			quiet = 0
		}
		prev, prevT = cur, now
		if now.Sub(start) > limit {
			return now.Sub(start), false
		}
	}
}

// gcCPUSeconds is the runtime's estimate of the CPU time spent on GC so far.
func gcCPUSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}

// heapAfterGC runs one full (blocking, swept) GC and returns HeapAlloc
// and how long the GC took.
func heapAfterGC() (uint64, time.Duration) {
	var ms runtime.MemStats
	start := time.Now()
	runtime.GC()
	d := time.Since(start)
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, d
}

// stableHeap runs GCs until HeapAlloc changes by less than 0.2% between two
// of them (at most 5) and returns it with the duration of the last GC.
func stableHeap() (uint64, time.Duration) {
	prev, d := heapAfterGC()
	for range 4 {
		time.Sleep(10 * time.Millisecond)
		h, dd := heapAfterGC()
		d = dd
		if absDiff(h, prev) <= prev/500 {
			return h, d
		}
		prev = h
	}
	return prev, d
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// The default workload is built once per test binary, outside any timer.
var (
	defaultLoadOnce sync.Once
	defaultLoad     *benchLoad
)

func benchWorkload(testing.TB) *benchLoad {
	defaultLoadOnce.Do(func() {
		spans := defaultBenchSpans
		if s := os.Getenv("TAILSIFT_BENCH_SPANS"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				panic("bad TAILSIFT_BENCH_SPANS=" + s)
			}
			spans = n
		}
		defaultLoad = recordWorkload(benchWorkloadConfig(spans))
		fmt.Printf("workload: %s\n", defaultLoad)
	})
	return defaultLoad
}

// consumeResult holds the metrics of one runConsume call.
type consumeResult struct {
	nsPerSpan, ingestNsPerSpan, cpuNsPerSpan float64
}

// stageBatches is how many batches are decoded ahead of the timed region
// at a time (~38k spans): enough to amortise the pauses, small enough that
// the staged input does not dominate the heap the GC has to scan.
const stageBatches = 128

// runConsume measures ConsumeTraces. Each loop iteration hands one fresh
// batch to the processor. Batches are decoded in groups of stageBatches
// with the timer stopped. Decision waits are long, so every trace stays
// buffered; after a full pass over the workload the processor is shut down
// and replaced by a fresh one, so the buffered state never exceeds one
// workload (no evictions).
//
// Because the processors are asynchronous, before every pause the harness
// waits (untimed) until the process is idle again, and counts that drain
// time separately. Reported metrics:
//   - ns/span, spans/s: wall time spent inside ConsumeTraces.
//   - ingest-ns/span: the same plus the drain time, i.e. the wall time
//     until everything handed over has actually been ingested.
//   - cpu-ns/span: process CPU time (all goroutines, including GC) over the
//     timed region plus the drain time. Least sensitive to other load on
//     the machine.
//   - gc-cpu-ns/span: the Go runtime's estimate of the part of that CPU
//     time spent on GC (/cpu/classes/gc/total:cpu-seconds).
//   - allocs/span, alloc-B/span: heap allocations over the same period.
func runConsume(b benchT, im impl, shards int, w *benchLoad) consumeResult {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(w.AvgBatchWireBytes())

	var (
		sink     *countingSink
		fwd      int64 // spans forwarded before any Shutdown
		p        processor.Traces
		staged   []ptrace.Traces
		stagedAt int // workload index of staged[0]
		next     int // index into staged
		spans    int64
		drain    time.Duration
		cpu      time.Duration
		mallocs  uint64
		allocB   uint64
		cpu0     time.Duration
		gcCPU    float64
		gc0      float64
		ms       runtime.MemStats
		busy     bool
	)
	// resume/pause bracket the accounted (timed + drain) periods.
	resume := func() {
		runtime.ReadMemStats(&ms)
		mallocs -= ms.Mallocs
		allocB -= ms.TotalAlloc
		gc0 = gcCPUSeconds()
		cpu0, _ = processCPU()
	}
	pause := func() {
		d, ok := waitIdle(30 * time.Second)
		busy = busy || !ok
		drain += d
		c, _ := processCPU()
		cpu += c - cpu0
		gcCPU += gcCPUSeconds() - gc0
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs
		allocB += ms.TotalAlloc
	}
	stage := func() {
		stagedAt += len(staged)
		if stagedAt == len(w.Requests) || p == nil {
			if p != nil {
				fwd += sink.spans.Load()
				shutdown(b, p)
			}
			stagedAt = 0
			sink = newCountingSink()
			p = newProcessor(b, im, shards, sink)
		}
		n := min(stageBatches, len(w.Requests)-stagedAt)
		staged = staged[:0]
		for i := range n {
			staged = append(staged, w.Batch(stagedAt+i))
		}
		next = 0
	}

	stage()
	resume()
	for b.Loop() {
		if next == len(staged) {
			b.StopTimer()
			pause()
			stage()
			resume()
			b.StartTimer()
		}
		if err := p.ConsumeTraces(ctx, staged[next]); err != nil {
			b.Fatalf("ConsumeTraces: %v", err)
		}
		spans += int64(w.Spans[stagedAt+next])
		staged[next] = ptrace.Traces{}
		next++
	}
	elapsed := b.Elapsed()
	pause()
	fwd += sink.spans.Load()
	shutdown(b, p)
	if busy {
		b.Logf("%s: process did not go idle within 30s", im.name)
	}
	if fwd != 0 {
		b.Logf("%s: %d of %d spans were forwarded while they should still be buffered", im.name, fwd, spans)
	}

	fs := float64(spans)
	r := consumeResult{
		nsPerSpan:       float64(elapsed.Nanoseconds()) / fs,
		ingestNsPerSpan: float64((elapsed + drain).Nanoseconds()) / fs,
		cpuNsPerSpan:    float64(cpu.Nanoseconds()) / fs,
	}
	b.ReportMetric(r.nsPerSpan, "ns/span")
	b.ReportMetric(fs/elapsed.Seconds(), "spans/s")
	b.ReportMetric(r.ingestNsPerSpan, "ingest-ns/span")
	b.ReportMetric(r.cpuNsPerSpan, "cpu-ns/span")
	b.ReportMetric(gcCPU*1e9/fs, "gc-cpu-ns/span")
	b.ReportMetric(float64(mallocs)/fs, "allocs/span")
	b.ReportMetric(float64(allocB)/fs, "alloc-B/span")
	return r
}

// retainedResult holds the metrics of one runRetained call.
type retainedResult struct {
	retainedPerSpan, inputPerSpan float64
}

// runRetained measures the heap a processor retains per buffered span:
// start the processor, take a baseline heap, build the input copies (their
// size is reported as input-B/span), feed them all with decision waits long
// enough that nothing is decided, drop every reference to the input, wait
// until the processor is idle, GC until the heap is stable and report the
// difference to the baseline divided by the number of spans fed
// (retained-B/span), adding the memory tailsift maps outside the heap for
// its span records (tracebuf.MappedBytes). Whatever the processor keeps (copies or the input
// itself) is counted; the processor's fixed start-up allocations are not:
// they are reported as startup-MiB (heap after Start minus heap before
// creation). fullgc-ms is the duration of one forced full GC with the
// whole workload buffered, a proxy for the GC mark cost of the buffer.
func runRetained(b benchT, im impl, shards int, w *benchLoad) retainedResult {
	ctx := context.Background()
	var sumRetained, sumInput, sumStartup, sumGC float64
	n := 0
	for b.Loop() {
		sink := newCountingSink()
		hStart, _ := stableHeap()
		p := newProcessor(b, im, shards, sink)
		// Let the processor settle (goroutines started, first tick).
		waitIdle(5 * time.Second)
		h0, _ := stableHeap()
		m0 := tracebuf.MappedBytes()
		input := w.Copy()
		h1, _ := heapAfterGC()
		for i := range input {
			if err := p.ConsumeTraces(ctx, input[i]); err != nil {
				b.Fatalf("ConsumeTraces: %v", err)
			}
			input[i] = ptrace.Traces{}
		}
		if _, ok := waitIdle(30 * time.Second); !ok {
			b.Logf("%s: process did not go idle within 30s after feeding", im.name)
		}
		h2, gc := stableHeap()
		if fwd := sink.spans.Load(); fwd != 0 {
			b.Logf("%s: %d of %d spans were forwarded while they should still be buffered", im.name, fwd, w.TotalSpans)
		}
		// tailsift holds span bytes outside the Go heap: count them too.
		sumRetained += (float64(h2) - float64(h0) + float64(tracebuf.MappedBytes()-m0)) / float64(w.TotalSpans)
		sumInput += (float64(h1) - float64(h0)) / float64(w.TotalSpans)
		sumStartup += float64(h0) - float64(hStart)
		sumGC += float64(gc) / float64(time.Millisecond)
		n++
		shutdown(b, p)
	}
	fn := float64(n)
	r := retainedResult{retainedPerSpan: sumRetained / fn, inputPerSpan: sumInput / fn}
	b.ReportMetric(r.retainedPerSpan, "retained-B/span")
	b.ReportMetric(r.inputPerSpan, "input-B/span")
	b.ReportMetric(sumStartup/fn/(1<<20), "startup-MiB")
	b.ReportMetric(sumGC/fn, "fullgc-ms")
	return r
}

// results collects one metric per implementation and shard count over all
// -count repetitions of a benchmark.
type results map[string]map[int][]float64

func (r results) add(implName string, shards int, v float64) {
	if r[implName] == nil {
		r[implName] = map[int][]float64{}
	}
	r[implName][shards] = append(r[implName][shards], v)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratioLine prints the tailsift/contrib ratio of the medians of metric for
// every shard count both implementations were measured at.
func ratioLine(metric string, shardCounts []int, res results) {
	for _, s := range shardCounts {
		ts, ct := res["tailsift"][s], res["contrib"][s]
		if len(ts) == 0 || len(ct) == 0 {
			continue
		}
		mt, mc := median(ts), median(ct)
		fmt.Printf("%s ratio tailsift/contrib shards=%d: %.3f (median tailsift %.1f n=%d, contrib %.1f n=%d)\n",
			metric, s, mt/mc, mt, len(ts), mc, len(ct))
	}
}
