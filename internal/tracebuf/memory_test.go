package tracebuf

import (
	"cmp"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/wire"
)

func TestMemLimit(t *testing.T) {
	a, b := testBufferConfig(), testBufferConfig()
	b.Buffer.MaxBytes, b.Buffer.MaxQueuedBytes = 512<<20, 64<<20
	allowA := int64(16<<20) + minHeadroom // an eighth of 80 MiB is less
	allowB := int64(64<<20) + (576<<20)/8
	require.Equal(t, allowA, heapAllowance(a))
	require.Equal(t, allowB, heapAllowance(b))
	tests := []struct {
		name   string
		env    string
		start  int64 // the Go memory when the first buffer starts; 100 when 0
		steps  []func(m *memLimiter)
		limits []int64
	}{
		{
			name: "one buffer",
			steps: []func(m *memLimiter){
				func(m *memLimiter) { m.add(a) },
				func(m *memLimiter) { m.remove(a) },
			},
			limits: []int64{100 + allowA, math.MaxInt64},
		},
		{
			name: "two buffers add up; the base is taken when the first starts",
			steps: []func(m *memLimiter){
				func(m *memLimiter) { m.add(a) },
				func(m *memLimiter) { m.add(b) },
				func(m *memLimiter) { m.remove(a) },
				func(m *memLimiter) { m.remove(b) },
			},
			limits: []int64{100 + allowA, 100 + allowA + allowB, 100 + allowB, math.MaxInt64},
		},
		{
			name:  "a Go heap larger than the allowance at start: twice that heap",
			start: 1 << 30,
			steps: []func(m *memLimiter){
				func(m *memLimiter) { m.add(a) },
				func(m *memLimiter) { m.add(b) },
				func(m *memLimiter) { m.remove(b) },
			},
			limits: []int64{2 << 30, 2 << 30, 2 << 30},
		},
		{
			name: "GOMEMLIMIT set: left alone",
			env:  "1GiB",
			steps: []func(m *memLimiter){
				func(m *memLimiter) { m.add(a) },
				func(m *memLimiter) { m.remove(a) },
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var limits []int64
			goBytes := cmp.Or(tt.start, 100)
			m := &memLimiter{
				getenv:  func(k string) string { require.Equal(t, "GOMEMLIMIT", k); return tt.env },
				set:     func(n int64) int64 { limits = append(limits, n); return 0 },
				goBytes: func() int64 { goBytes += 50; return goBytes - 50 },
			}
			for _, step := range tt.steps {
				step(m)
			}
			assert.Equal(t, tt.limits, limits)
		})
	}
}

// A queued request counts its scan as well as its bytes, and a pooled
// request lets a huge scan go.
func TestQueueWeight(t *testing.T) {
	buf := encodeSized(t, []uint64{1, 2, 3}, 100, 10)
	var batch wire.Batch
	require.NoError(t, wire.Scan(buf, &batch))
	require.Len(t, batch.Spans, 300)
	w := queueWeight(buf, &batch)
	assert.GreaterOrEqual(t, w, int64(len(buf))+300*100, "scan counted")

	trimScan(&batch)
	assert.Empty(t, batch.Spans)
	assert.GreaterOrEqual(t, cap(batch.Spans), 300, "a small scan is kept for reuse")
	batch.Spans = make([]wire.Span, 0, maxPooledSpans+1)
	trimScan(&batch)
	assert.Zero(t, cap(batch.Spans), "a huge scan is let go")
}
