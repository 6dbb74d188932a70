package sampling_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// bytesTrace is contrib's newTraceBytesFilter: one span with attributes and
// an event, in a resource and scope with attributes.
func bytesTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "test-service")
	rs.Resource().Attributes().PutStr("service.version", "1.0.0")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("test-scope")
	ss.Scope().SetVersion("1.0.0")
	span := ss.Spans().AppendEmpty()
	span.SetTraceID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	span.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	span.SetName("test-span")
	span.SetKind(ptrace.SpanKindServer)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(100 * time.Millisecond)))
	span.Attributes().PutStr("http.method", "GET")
	span.Attributes().PutStr("http.url", "http://example.com/test")
	span.Attributes().PutInt("http.status_code", 200)
	event := span.Events().AppendEmpty()
	event.SetName("test-event")
	event.SetTimestamp(pcommon.NewTimestampFromTime(start))
	event.Attributes().PutStr("event.attr", "value")
	return td
}

// bytesTraceSize is the SizeBytes the buffer records for bytesTrace.
func bytesTraceSize(t testing.TB) int64 {
	t.Helper()
	e := newEngine(t, statusPolicy("s", "ERROR"))
	return int64(samplingtest.Summarize(t, e, bytesTrace(), t0).SizeBytes)
}

// TestTraceSize compares the size bytes_limiting charges (the span messages'
// encoded bytes) with contrib's (ProtoMarshaler.TracesSize of the received
// batches): ours leaves out the resource, the scope and their framing.
func TestTraceSize(t *testing.T) {
	size := bytesTraceSize(t)
	var m ptrace.ProtoMarshaler
	contrib := int64(m.TracesSize(bytesTrace()))
	span := ptrace.NewTraces()
	bytesTrace().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(
		span.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
	// The span wrapped in an empty resource and scope costs only 13 bytes
	// more: the tag and 2-byte length of the span, scope-spans and
	// resource-spans messages (3×3), and the empty resource and scope (2×2).
	assert.Equal(t, size+13, int64(m.TracesSize(span)))
	assert.Positive(t, size)
	assert.Less(t, size, contrib)
	t.Logf("bytes_limiting size %d bytes, contrib's TracesSize %d bytes", size, contrib)
}

// Ported from contrib's bytes_limiting_test.go (token bucket, gate off).
func TestBytesLimiting(t *testing.T) {
	size := bytesTraceSize(t)
	traceAt := func(now int64, want sampling.Verdict) step {
		return step{now: now, bytes: uint64(size), spans: 1, want: want}
	}
	tests := []struct {
		name       string
		bps, burst int64
		steps      []step
	}{
		{"under burst capacity: single trace", size / 2, size * 2, []step{traceAt(t0, sampling.Sampled)}},
		{"at burst capacity: single trace", size / 2, size, []step{traceAt(t0, sampling.Sampled)}},
		{"over burst capacity: single large trace", size, size - 1, []step{traceAt(t0, sampling.NotSampled)}},
		{"multiple traces within burst", size, size * 3, []step{traceAt(t0, sampling.Sampled), traceAt(t0, sampling.Sampled)}},
		{"multiple traces exceeding burst", size / 2, size + 1, []step{traceAt(t0, sampling.Sampled), traceAt(t0, sampling.NotSampled)}},
		{
			// TestBytesLimitingDefaultConstructor
			"default burst is twice the rate", size, 0,
			[]step{traceAt(t0, sampling.Sampled), traceAt(t0, sampling.Sampled), traceAt(t0, sampling.NotSampled)},
		},
		{
			// TestBytesLimitingTokenRefill, with 600ms passed through t.Now
			"tokens refill at the rate", size * 2, size,
			[]step{traceAt(t0, sampling.Sampled), traceAt(t0, sampling.NotSampled), traceAt(t0+600*int64(time.Millisecond), sampling.Sampled)},
		},
		{
			"half a second refills half the rate", size * 2, size,
			[]step{traceAt(t0, sampling.Sampled), traceAt(t0+499*int64(time.Millisecond), sampling.NotSampled), traceAt(t0+500*int64(time.Millisecond), sampling.Sampled)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, build(t, bytesLimitingPolicy("bl", tt.bps, tt.burst)), tt.steps)
		})
	}
}

func TestBytesLimitingSummarized(t *testing.T) {
	// Through the buffer's summary: a 2-span trace weighs both spans.
	size := bytesTraceSize(t)
	two := bytesTrace()
	sp := two.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	sp.At(0).CopyTo(sp.AppendEmpty())
	e := newEngine(t, bytesLimitingPolicy("bl", 1, 2*size))
	assert.True(t, decide(t, e, two, t0).Keep())
	assert.False(t, decide(t, e, bytesTrace(), t0).Keep())
	e = newEngine(t, bytesLimitingPolicy("bl", 1, 2*size-1))
	assert.False(t, decide(t, e, two, t0).Keep())
	assert.True(t, decide(t, e, bytesTrace(), t0).Keep())
}

// TestBytesLimitingConcurrency is contrib's: concurrent evaluations are safe
// and, at one instant, exactly the burst's worth passes.
func TestBytesLimitingConcurrency(t *testing.T) {
	size := bytesTraceSize(t)
	p := build(t, bytesLimitingPolicy("bl", size*10, size*2))
	results := make(chan bool, 10)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			results <- p.Evaluate(&sampling.Trace{Now: t0, SpanCount: 1, SizeBytes: uint64(size)}).Keep()
		})
	}
	wg.Wait()
	close(results)
	kept := 0
	for k := range results {
		if k {
			kept++
		}
	}
	require.Equal(t, 2, kept)
}
