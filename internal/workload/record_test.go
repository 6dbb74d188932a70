package workload

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecord(t *testing.T) {
	cfg := Config{Seed: 7, Rate: 20000, Duration: 500 * time.Millisecond, Templates: 50, MaxSpans: 300}
	cfg.SetMix(Mix{Error: 10, Slow: 5})
	base := time.Unix(1_700_000_000, 0)
	rec, err := Record(cfg, base)
	require.NoError(t, err)
	require.NotEmpty(t, rec.Requests)
	require.Len(t, rec.Spans, len(rec.Requests))

	// The counts agree with the requests' contents.
	spans, wire := 0, 0
	traces := map[[16]byte]int{}
	for i, enc := range rec.Requests {
		td := decode(t, enc)
		assert.Equal(t, rec.Spans[i], td.SpanCount(), "request %d", i)
		assert.LessOrEqual(t, rec.Spans[i], cfg.MaxSpans, "request %d", i)
		spans += rec.Spans[i]
		wire += len(enc)
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					traces[sp.TraceID()]++
					assert.GreaterOrEqual(t, sp.StartTimestamp().AsTime().UnixNano(), base.UnixNano())
				}
			}
		}
	}
	assert.Equal(t, spans, rec.TotalSpans)
	assert.Equal(t, wire, rec.WireBytes)
	assert.InDelta(t, cfg.Rate*cfg.Duration.Seconds(), float64(rec.TotalSpans), 50, "spans of the traces started during Duration")
	assert.Len(t, traces, rec.Traces)
	classSum := 0
	for _, n := range rec.ClassTraces {
		classSum += n
	}
	assert.Equal(t, rec.Traces, classSum)
	assert.Positive(t, rec.ClassTraces[ClassError])
	maxSpans := 0
	for _, n := range traces {
		maxSpans = max(maxSpans, n)
	}
	assert.Equal(t, maxSpans, rec.MaxTraceSpans)

	again, err := Record(cfg, base)
	require.NoError(t, err)
	assert.Equal(t, rec.Requests, again.Requests, "same config and base, same bytes")
}

func TestRecordNeedsDuration(t *testing.T) {
	_, err := Record(Config{Seed: 1, Rate: 1000}, time.Unix(0, 0))
	require.ErrorContains(t, err, "duration")
	_, err = Record(Config{Seed: 1, Duration: time.Second}, time.Unix(0, 0))
	require.ErrorContains(t, err, "rate")
}
