package benchmarks

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/workload"
)

// fakeB runs a benchmark body for a fixed number of iterations inside a
// normal test, mimicking b.Loop's timer handling.
type fakeB struct {
	*testing.T
	iters, done int
	running     bool
	start       time.Time
	elapsed     time.Duration
	metrics     map[string]float64
}

var _ benchT = (*fakeB)(nil)

func (f *fakeB) Loop() bool {
	if f.done == 0 {
		f.elapsed = 0
		f.StartTimer()
	}
	if f.done >= f.iters {
		f.StopTimer()
		return false
	}
	f.done++
	return true
}

func (f *fakeB) StartTimer() {
	if !f.running {
		f.running = true
		f.start = time.Now()
	}
}

func (f *fakeB) StopTimer() {
	if f.running {
		f.running = false
		f.elapsed += time.Since(f.start)
	}
}

func (*fakeB) ReportAllocs()  {}
func (*fakeB) SetBytes(int64) {}

func (f *fakeB) ReportMetric(n float64, unit string) { f.metrics[unit] = n }

func (f *fakeB) Elapsed() time.Duration { return f.elapsed }

// TestBenchmarksSmoke runs every benchmark body once on a tiny workload so
// the benchmark code keeps compiling and working. It checks plumbing only,
// not performance.
func TestBenchmarksSmoke(t *testing.T) {
	cfg := benchWorkloadConfig(2000)
	cfg.Templates, cfg.MaxSpans = 50, 120
	w := recordWorkload(cfg)
	if w.TotalSpans < 1900 || len(w.Requests) < 2 {
		t.Fatalf("unexpected workload: %s", w)
	}
	if len(implRegistry) == 0 {
		t.Fatal("no implementations registered")
	}
	// Each body runs once per implementation: ConsumeTraces with two shards
	// and more iterations than batches (so the per-pass processor restart
	// is exercised), RetainedBytes with one shard.
	for _, im := range implRegistry {
		t.Run("impl="+im.name, func(t *testing.T) {
			fb := &fakeB{T: t, iters: len(w.Requests) + len(w.Requests)/2, metrics: map[string]float64{}}
			runConsume(fb, im, 2, w)
			for _, m := range []string{"ns/span", "spans/s", "ingest-ns/span", "allocs/span"} {
				if !(fb.metrics[m] > 0) {
					t.Errorf("ConsumeTraces metric %s = %v, want > 0", m, fb.metrics[m])
				}
			}
			fr := &fakeB{T: t, iters: 1, metrics: map[string]float64{}}
			runRetained(fr, im, 1, w)
			if _, ok := fr.metrics["retained-B/span"]; !ok {
				t.Error("retained-B/span not reported")
			}
		})
	}
}

// TestWorkloadShape checks the benchmark workload against its description
// (benchWorkloadConfig, README.md). Its size is the default one: a much
// smaller run is dominated by the first and last batching delays (0.2-5 s of
// virtual time), whose batches are smaller.
func TestWorkloadShape(t *testing.T) {
	cfg := benchWorkloadConfig(defaultBenchSpans)
	if cfg.Shape == workload.ShapeSDK {
		t.Skip("TAILSIFT_BENCH_SHAPE=sdk: the SDK shape is checked by internal/workload's TestSDKShape and TestSDKShapeMatchesRealSDK")
	}
	w := recordWorkload(cfg)
	t.Log(w)
	traces := float64(w.Traces)
	mean := float64(w.TotalSpans) / traces
	assert.InDelta(t, 12, mean, 2, "spans/trace")
	assert.LessOrEqual(t, w.MaxTraceSpans, 50, "largest trace (no huge traces)")
	assert.InDelta(t, 0.03, float64(w.ClassTraces[workload.ClassError])/traces, 0.01, "error trace fraction")
	assert.InDelta(t, 0.01, float64(w.ClassTraces[workload.ClassSlow])/traces, 0.007, "slow trace fraction")
	assert.Zero(t, w.ClassTraces[workload.ClassAnomaly]+w.ClassTraces[workload.ClassHuge], "anomaly and huge traces")
	assert.InDelta(t, 300, float64(w.TotalSpans)/float64(len(w.Requests)), 100, "spans/batch")
	assert.InDelta(t, 550, float64(w.WireBytes)/float64(w.TotalSpans), 150, "wire bytes/span")
	for i := range w.Requests {
		require.LessOrEqual(t, w.Spans[i], 500, "batch %d", i)
	}
}
