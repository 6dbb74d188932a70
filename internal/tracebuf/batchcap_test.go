package tracebuf

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// requestLog records, for each request the buffer hands on, how many spans
// of each trace it holds.
type requestLog struct {
	mu   sync.Mutex
	reqs []map[[16]byte]int
}

func (l *requestLog) emit(_ context.Context, td ptrace.Traces) error {
	per := map[[16]byte]int{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				per[sp.TraceID()]++
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, per)
	return nil
}

// check asserts that no request holds more than maxSpans spans, unless it
// is a single trace and whole is set, and returns the spans handed on per trace and the
// number of requests each trace's spans came in.
func (l *requestLog) check(t *testing.T, maxSpans int, whole bool) (spans, reqs map[[16]byte]int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	spans, reqs = map[[16]byte]int{}, map[[16]byte]int{}
	var over []string
	for i, per := range l.reqs {
		n := 0
		for id, k := range per {
			n += k
			spans[id] += k
			reqs[id]++
		}
		if n > maxSpans && (!whole || len(per) > 1) {
			over = append(over, fmt.Sprintf("request %d: %d spans of %d traces", i, n, len(per)))
		}
	}
	assert.Empty(t, over, "requests over batch_max_spans %d (of %d)", maxSpans, len(l.reqs))
	return spans, reqs
}

// output.batch_max_spans bounds every request handed on, whichever path
// filled the batch: traces decided early for memory in an Ingest call (which
// leaves the handing on to the shard's goroutine), the final flush, and late
// spans of kept traces. A trace larger than the cap goes whole, alone.
// (The batch was handed on only once it had reached the cap: an append
// overshot it by up to a trace or a request's late spans, and an Ingest
// call that forced many traces out for memory grew it without bound.)
func TestOutputBatchMaxSpansBoundsEveryRequest(t *testing.T) {
	const maxSpans = 10
	keepAll := []sampling.PolicyConfig{
		sampling.NewPolicyConfig("all", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 100}),
	}
	config := func() Config {
		cfg := testBufferConfig()
		cfg.Completion.MaxSpans = 1000
		cfg.Output.BatchTimeout = time.Minute
		cfg.Output.BatchMaxSpans = maxSpans
		cfg.Policies = keepAll
		return cfg
	}
	ctx := context.Background()

	t.Run("traces decided for memory in one Ingest", func(t *testing.T) {
		cfg := config()
		cfg.Buffer.MaxBytes = 2 << 20
		out := &requestLog{}
		b, _ := startBuffer(t, cfg, out.emit, nil)
		// Trace 1 has 25 spans, more than the cap; then 2000 traces of 4
		// spans of about 1000 bytes in requests of 50 traces: each request
		// past the budget forces about 50 traces (200 spans) out at once.
		require.NoError(t, b.Ingest(ctx, encodeSized(t, []uint64{1}, 25, 1000)))
		for r := range uint64(40) {
			traces := make([]uint64, 50)
			for i := range traces {
				traces[i] = 1000 + r*50 + uint64(i)
			}
			require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, 4, 1000)))
		}
		require.NoError(t, b.Shutdown(ctx))
		spans, reqs := out.check(t, maxSpans, true)
		assert.Equal(t, 25, spans[tid(1)], "trace 1 handed on")
		assert.Equal(t, 1, reqs[tid(1)], "trace 1 split")
		assert.Len(t, spans, 2001)
		for id, n := range reqs {
			assert.Equal(t, 1, n, "trace %x split", id)
		}
	})

	t.Run("final flush", func(t *testing.T) {
		out := &requestLog{}
		b, _ := startBuffer(t, config(), out.emit, nil)
		traces := make([]uint64, 30)
		for i := range traces {
			traces[i] = uint64(i) + 1
		}
		require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, 3, 10)))
		require.NoError(t, b.Ingest(ctx, encodeSized(t, []uint64{100}, 12, 10)))
		require.NoError(t, b.Shutdown(ctx))
		spans, reqs := out.check(t, maxSpans, true)
		assert.Len(t, spans, 31)
		assert.Equal(t, 12, spans[tid(100)])
		for id, n := range reqs {
			assert.Equal(t, 1, n, "trace %x split", id)
		}
	})

	t.Run("late spans of kept traces", func(t *testing.T) {
		cfg := config()
		cfg.Completion.MaxSpans = 1 // kept at its first span
		out := &requestLog{}
		b, _ := startBuffer(t, cfg, out.emit, nil)
		require.NoError(t, b.Ingest(ctx, encodeSized(t, []uint64{1, 2, 3}, 1, 10)))
		require.NoError(t, b.Ingest(ctx, encodeSized(t, []uint64{1, 2}, 25, 10)))
		require.NoError(t, b.Shutdown(ctx))
		spans, _ := out.check(t, maxSpans, false) // late spans are split anywhere
		assert.Equal(t, 26, spans[tid(1)])
		assert.Equal(t, 26, spans[tid(2)])
		assert.Equal(t, 1, spans[tid(3)])
	})
}
