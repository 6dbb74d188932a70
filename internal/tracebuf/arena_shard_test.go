package tracebuf

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// mappedObserver sums the arena's mapped bytes the buffer reports.
type mappedObserver struct {
	NopObserver
	mapped atomic.Int64
}

func (o *mappedObserver) Mapped(bytes int64) { o.mapped.Add(bytes) }

// encodeSized builds a request with spans spans of each trace, each span
// carrying an attribute of size bytes.
func encodeSized(t *testing.T, traces []uint64, spans, size int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	pad := strings.Repeat("x", size)
	for _, n := range traces {
		for k := range spans {
			sp := ss.AppendEmpty()
			sp.SetTraceID(tid(n))
			var sid [8]byte
			binary.BigEndian.PutUint64(sid[:], uint64(k)+2)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
			sp.Attributes().PutStr("pad", pad)
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

func newArenaTestBuffer(t *testing.T, maxBytes int) (*Buffer, *mappedObserver, *clocktest.Fake) {
	t.Helper()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 1000
	cfg.Buffer.MaxBytes = ByteSize(maxBytes)
	clk := clocktest.NewFake(time.Unix(0, 0))
	obs := &mappedObserver{}
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	t.Cleanup(func() {
		require.NoError(t, b.Shutdown(context.Background()))
		assert.Zero(t, obs.mapped.Load(), "arena memory still reported after shutdown")
	})
	return b, obs, clk
}

// After a spike, the arena gives its memory back once the traces are
// decided, and the self-metric follows it down.
func TestBufferGivesArenaMemoryBack(t *testing.T) {
	b, obs, clk := newArenaTestBuffer(t, 64<<20)
	ctx := context.Background()
	for r := range uint64(40) {
		traces := make([]uint64, 50)
		for i := range traces {
			traces[i] = r*1000 + uint64(i)
		}
		require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, 4, 1000)))
	}
	require.NoError(t, b.Sync(ctx))
	s := b.shards[0]
	peak := obs.mapped.Load()
	assert.Equal(t, s.arena.mapped, peak)
	require.Greater(t, peak, int64(8<<20), "about 8 MB of span records buffered")

	clk.Advance(time.Minute) // every trace decided (dropped: no ERROR)
	require.NoError(t, b.Sync(ctx))
	require.Empty(t, s.traces)
	assert.Zero(t, obs.mapped.Load(), "mapped bytes once the buffer is empty (peak %d)", peak)
	assert.Zero(t, s.arena.mapped)
}

// The budget counts the arena's free blocks: traces of small spans, pushed
// out for memory by traces of large spans, leave blocks of classes the
// newcomers cannot use. What the arena holds, in use or spare, stays within
// buffer.max_bytes; it once grew to about twice the budget.
func TestBudgetCountsArenaSpare(t *testing.T) {
	const budget = 16 << 20
	b, _, _ := newArenaTestBuffer(t, budget)
	ctx := context.Background()
	s := b.shards[0]
	n := uint64(0)
	// Rounds of small spans (~100 B) then large ones (~4 KiB, 3 per trace),
	// each round about 1.5× the budget.
	for round := range 4 {
		spans, size := 1, 60
		if round%2 == 1 {
			spans, size = 3, 4000
		}
		perTrace := spans * (size + 60)
		for range (budget * 3 / 2) / perTrace / 100 {
			traces := make([]uint64, 100)
			for i := range traces {
				n++
				traces[i] = n
			}
			require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, spans, size)))
		}
		require.NoError(t, b.Sync(ctx))
		assert.LessOrEqual(t, s.used+s.groups.bytes, s.budget-s.arena.reserve, "round %d: records within their share", round)
		assert.LessOrEqual(t, s.arena.resident(), int64(budget), "round %d: the arena holds %d bytes (%d spare)",
			round, s.arena.resident(), s.arena.spare)
	}
}
