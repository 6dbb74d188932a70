package sampling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// contribLatencyKeeps is contrib's rule, as written in
// processor/tailsamplingprocessor@v0.161.0/internal/sampling/latency.go
// (latency.Evaluate, no upper bound): the trace's duration, truncated to
// whole milliseconds by time.Duration.Milliseconds, must be greater than
// threshold_ms. That package is internal to contrib, so the rule is copied
// here rather than called.
func contribLatencyKeeps(start, end uint64, thresholdMs int64) bool {
	duration := pcommon.Timestamp(end).AsTime().Sub(pcommon.Timestamp(start).AsTime())
	return duration.Milliseconds() > thresholdMs
}

// TestLatencyBoundaryMatchesContrib pins the latency policy's boundary to
// contrib v0.161.0: a duration equal to threshold_ms is not kept (contrib's
// internal/sampling/latency_test.go, TestEvaluate_Latency, case "trace
// duration is equal to threshold", expects NotSampled), one millisecond more
// is, and sub-millisecond parts are truncated, so threshold_ms: 0 keeps only
// traces of 1 ms or more.
func TestLatencyBoundaryMatchesContrib(t *testing.T) {
	const base = uint64(1_700_000_000_000_000_000)
	us := uint64(time.Microsecond)
	tests := []struct {
		name      string
		threshold int64
		duration  uint64
		keep      bool
	}{
		{"equal to threshold", 5000, 5000 * ms, false},
		{"threshold + 1 ms", 5000, 5001 * ms, true},
		{"threshold + 999 µs (truncated to threshold)", 5000, 5000*ms + 999*us, false},
		{"threshold + 1 ms - 1 ns (truncated to threshold)", 5000, 5001*ms - 1, false},
		{"threshold - 1 ns", 5000, 5000*ms - 1, false},
		{"zero threshold, zero duration", 0, 0, false},
		{"zero threshold, 999 µs", 0, 999 * us, false},
		{"zero threshold, 1 ms", 0, ms, true},
		{"1 ms threshold, 1.5 ms", 1, ms + 500*us, false},
		{"1 ms threshold, 2 ms", 1, 2 * ms, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := base, base+tt.duration
			check := assert.New(t)
			check.Equal(tt.keep, contribLatencyKeeps(start, end, tt.threshold), "contrib's rule")
			e := newEngine(t, latencyPolicy("slow", tt.threshold, 0))
			tr := traceWith(traceID(7), "")
			tr.Start, tr.End = start, end
			check.Equal(tt.keep, e.Decide(tr).Keep(), "tailsift, duration %d ns", tr.Duration())
		})
	}
}
