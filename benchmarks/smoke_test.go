package benchmarks

import (
	"bytes"
	"slices"
	"testing"
	"time"
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
	cfg := DefaultWorkloadConfig()
	cfg.TotalSpans = 2000
	cfg.MinBatchSpans, cfg.MaxBatchSpans = 40, 120
	cfg.ActiveTraces = 60
	w := GenerateWorkload(cfg)
	if w.TotalSpans < cfg.TotalSpans || len(w.Encoded) < 2 {
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
			fb := &fakeB{T: t, iters: len(w.Encoded) + len(w.Encoded)/2, metrics: map[string]float64{}}
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

// TestWorkloadShape checks the generator against the documented workload.
func TestWorkloadShape(t *testing.T) {
	cfg := DefaultWorkloadConfig()
	cfg.TotalSpans = 5000
	w := GenerateWorkload(cfg)
	w2 := GenerateWorkload(cfg)
	if !slices.EqualFunc(w.Encoded, w2.Encoded, bytes.Equal) {
		t.Fatalf("workload not deterministic: %s vs %s", w, w2)
	}
	mean := float64(w.TotalSpans) / float64(w.TotalTraces)
	if mean < 10 || mean > 14 || w.MaxSpans > maxSpansPerTrace {
		t.Errorf("spans/trace mean %.1f max %d", mean, w.MaxSpans)
	}
	if f := float64(w.ErrorTraces) / float64(w.TotalTraces); f < 0.01 || f > 0.05 {
		t.Errorf("error trace fraction %.3f", f)
	}
	if f := float64(w.SlowTraces) / float64(w.TotalTraces); f < 0.003 || f > 0.03 {
		t.Errorf("slow trace fraction %.3f", f)
	}
	if b := float64(w.WireBytes) / float64(w.TotalSpans); b < 400 || b > 700 {
		t.Errorf("wire bytes/span %.0f", b)
	}
	t.Log(w)
}
