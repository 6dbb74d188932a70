// Package storetest holds what the store's benchmarks share: a recorded
// workload with each request's trace IDs, and the process's CPU time (the
// store's writer runs on a goroutine of its own, so ns/op of the caller
// does not show its cost).
package storetest

import (
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/internal/workload"
)

// Workload is a recorded request stream of the benchmark workload.
type Workload struct {
	Requests [][]byte
	IDs      [][][16]byte // each request's trace IDs, in order, repeats removed
	Spans    []int
	Total    int // spans
	Wire     int // bytes
}

// Record records d of the benchmark workload at rate spans/s (1% error
// traces) and scans each request for its trace IDs.
func Record(tb testing.TB, rate float64, d time.Duration) *Workload {
	tb.Helper()
	rec, err := workload.Record(workload.Config{Seed: 1, Rate: rate, Duration: d, ErrorPct: 1}, time.Unix(1_700_000_000, 0))
	if err != nil {
		tb.Fatal(err)
	}
	w := &Workload{Requests: rec.Requests, Spans: rec.Spans, Total: rec.TotalSpans, Wire: rec.WireBytes}
	var batch wire.Batch
	for _, req := range rec.Requests {
		if err := wire.Scan(req, &batch); err != nil {
			tb.Fatal(err)
		}
		var ids [][16]byte
		for i := range batch.Spans {
			if id := batch.Spans[i].TraceID; len(ids) == 0 || ids[len(ids)-1] != id {
				ids = append(ids, id)
			}
		}
		w.IDs = append(w.IDs, ids)
		batch.Reset()
	}
	return w
}
