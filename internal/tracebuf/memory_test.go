package tracebuf

import (
	"cmp"
	"context"
	"math"
	"runtime"
	"testing"
	"unsafe"

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
		env    string // GOMEMLIMIT
		gogc   string // GOGC
		start  int64  // the Go memory when the first buffer starts; 100 when 0
		steps  []func(m *memLimiter)
		limits []int64
		gc     []int // the GOGC values set, in order
	}{
		{
			name: "one buffer",
			steps: []func(m *memLimiter){
				func(m *memLimiter) { m.add(a) },
				func(m *memLimiter) { m.remove(a) },
			},
			limits: []int64{100 + allowA, math.MaxInt64},
			gc:     []int{gcPercent, 100},
		},
		{
			name: "GOGC set: the limit, and GOGC left alone",
			gogc: "50",
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
			gc:     []int{gcPercent, 100},
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
			gc:     []int{gcPercent},
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
			var gc []int
			gogc := 100
			goBytes := cmp.Or(tt.start, 100)
			m := &memLimiter{
				getenv: func(k string) string {
					require.Contains(t, []string{"GOMEMLIMIT", "GOGC"}, k)
					return map[string]string{"GOMEMLIMIT": tt.env, "GOGC": tt.gogc}[k]
				},
				set: func(n int64) int64 { limits = append(limits, n); return 0 },
				setGC: func(n int) int {
					gc = append(gc, n)
					gogc, n = n, gogc
					return n
				},
				goBytes: func() int64 { goBytes += 50; return goBytes - 50 },
			}
			for _, step := range tt.steps {
				step(m)
			}
			assert.Equal(t, tt.limits, limits)
			assert.Equal(t, tt.gc, gc)
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

// A buffered trace's heap (its struct and its map entry; its records live
// off the heap, in the arena) is within what the budget counts for it:
// traceOverhead follows the struct's size, and this fails when a trace
// grows something on the heap that traceOverhead does not count.
func TestTraceOverheadCoversHeap(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 1000
	b, _ := startBuffer(t, cfg, (&collector{spans: map[[16]byte]int{}}).emit, nil)
	ctx := context.Background()
	s := b.shards[0]

	const messages, perMessage = 24, 1000
	reqs := make([][]byte, messages)
	for m := range reqs {
		ids := make([]uint64, perMessage)
		for i := range ids {
			ids[i] = uint64(m*perMessage + i + 1)
		}
		reqs[m] = encodeSized(t, ids, 1, 10)
	}
	// The first message grows the shard's scratch and pools; count from after it.
	require.NoError(t, b.Ingest(ctx, reqs[0]))
	require.NoError(t, b.Sync(ctx))
	before := liveHeap()
	for _, req := range reqs[1:] {
		require.NoError(t, b.Ingest(ctx, req))
	}
	require.NoError(t, b.Sync(ctx))
	after := liveHeap()
	traces := int64((messages - 1) * perMessage)
	require.Len(t, s.traces, messages*perMessage, "nothing decided")

	perTrace, counted := (after-before)/traces, traceOverhead
	t.Logf("heap per buffered trace %d B, counted %d B (struct %d B)", perTrace, counted, unsafe.Sizeof(trace{}))
	assert.LessOrEqual(t, perTrace, counted, "a buffered trace takes more heap than the budget counts")
	assert.GreaterOrEqual(t, perTrace, counted/2, "the count is far above what a trace takes")
	assert.GreaterOrEqual(t, counted, int64(unsafe.Sizeof(trace{})))
}

// liveHeap is the Go heap live after two full collections (the second
// empties the pools' victim caches: the requests' scans).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
