package benchmarks

import (
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/workload"
)

// benchRate is the offered rate the benchmark workload is generated at
// (virtual time, so it only shapes the batches): the loadgen's default.
const benchRate = 20000

// defaultBenchSpans is the size of the benchmark workload unless
// TAILSIFT_BENCH_SPANS sets it.
const defaultBenchSpans = 200_000

// benchWorkloadConfig is the workload every benchmark replays:
// tailsift-loadgen's traces (5-50 spans, about 12 on average) at its
// default rate, in requests of at most 500 spans. 3 % of the traces are
// error traces and about 1 % slow ones (the root latency's own log-normal
// tail); there are no anomaly or huge traces and no late spans.
// TAILSIFT_BENCH_SHAPE=sdk replays workload.ShapeSDK's requests instead (one
// service's SDK batch per request, ~16 spans per trace, 4 attributes).
func benchWorkloadConfig(totalSpans int) workload.Config {
	cfg := workload.Config{
		Seed:     20240611,
		Rate:     benchRate,
		Duration: time.Duration(float64(totalSpans) / benchRate * float64(time.Second)),
		MaxSpans: 500,
	}
	cfg.SetMix(workload.Mix{Error: 3})
	cfg.Shape = os.Getenv("TAILSIFT_BENCH_SHAPE") // "" (bench) or sdk: see workload.ShapeSDK
	return cfg
}

// benchLoad is a recorded workload the benchmarks feed to the processors.
// Batch returns a fresh pdata copy, so a processor that mutates or retains
// its input cannot corrupt the recording.
type benchLoad struct {
	*workload.Recording
}

func recordWorkload(cfg workload.Config) *benchLoad {
	rec, err := workload.Record(cfg, time.Now().Truncate(time.Minute))
	if err != nil {
		panic(err)
	}
	return &benchLoad{rec}
}

// AvgBatchWireBytes is the mean OTLP protobuf size of a batch.
func (w *benchLoad) AvgBatchWireBytes() int64 {
	return int64(w.WireBytes / len(w.Requests))
}

// Batch decodes a fresh copy of batch i.
func (w *benchLoad) Batch(i int) ptrace.Traces {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(w.Requests[i])
	if err != nil {
		panic(err)
	}
	return td
}

// Copy returns fresh copies of all batches.
func (w *benchLoad) Copy() []ptrace.Traces {
	out := make([]ptrace.Traces, len(w.Requests))
	for i := range out {
		out[i] = w.Batch(i)
	}
	return out
}
