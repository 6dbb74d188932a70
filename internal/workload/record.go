package workload

import (
	"errors"
	"fmt"
	"time"
)

// Recording is a finite request stream generated ahead of time and kept in
// encoded form (ExportTraceServiceRequest bytes, which decode as OTLP
// TracesData), for benchmarks that replay the same requests to several
// consumers. The encoded bytes hold no pointers, so a large recording adds
// nothing for the GC to scan.
type Recording struct {
	Requests [][]byte // encoded requests, in virtual send order
	Spans    []int    // spans per request
	// TotalSpans and WireBytes sum Spans and the encoded sizes.
	TotalSpans, WireBytes int
	// Traces is the number of trace instances, ClassTraces that number per
	// class; MaxTraceSpans is the largest trace's span count.
	Traces        int
	ClassTraces   map[string]int
	MaxTraceSpans int
}

// Record runs a Generator for cfg until every trace started during
// cfg.Duration has been sent and returns all its requests, encoded with
// virtual time 0 at wall time wallBase. The requests depend only on cfg and
// wallBase.
func Record(cfg Config, wallBase time.Time) (*Recording, error) {
	if cfg.Duration <= 0 {
		return nil, errors.New("workload: record: duration must be > 0")
	}
	g, err := NewGenerator(cfg)
	if err != nil {
		return nil, fmt.Errorf("workload: record: %w", err)
	}
	rec := &Recording{ClassTraces: map[string]int{}}
	traceDone := func(in *Instance) {
		rec.Traces++
		rec.ClassTraces[in.T.Class]++
		rec.MaxTraceSpans = max(rec.MaxTraceSpans, len(in.T.Spans))
	}
	base := wallBase.UnixNano()
	for r := g.Next(); r != nil; r = g.Next() {
		enc := g.AppendRequest(make([]byte, 0, r.Size), r, base)
		r.Complete(base+r.SendV, false, traceDone)
		rec.Requests = append(rec.Requests, enc)
		rec.Spans = append(rec.Spans, r.Spans)
		rec.TotalSpans += r.Spans
		rec.WireBytes += len(enc)
	}
	return rec, nil
}

// String summarises the recording's shape.
func (rec *Recording) String() string {
	n := max(len(rec.Requests), 1)
	spans, traces := float64(max(rec.TotalSpans, 1)), max(rec.Traces, 1)
	return fmt.Sprintf("%d spans, %d traces (%.1f spans/trace, max %d), %d requests (%.0f spans/request), %.0f wire B/span, %d error traces, %d slow traces",
		rec.TotalSpans, rec.Traces, spans/float64(traces), rec.MaxTraceSpans,
		len(rec.Requests), spans/float64(n), float64(rec.WireBytes)/spans,
		rec.ClassTraces[ClassError], rec.ClassTraces[ClassSlow])
}
