package tracebuf

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
)

// A big stored trace: bigRequests requests of bigPerRequest spans, each
// with bigPad bytes of attribute, numbered from bigFirst (span ID = the
// number, big-endian). 32 MiB of OTLP in all.
const (
	bigRequests, bigPerRequest, bigPad = 128, 1000, 200
	bigFirst                           = 1000
	bigSpans                           = bigRequests * bigPerRequest
)

// storeBigTrace appends the big trace's spans for trace n to st, and
// returns their size in OTLP bytes.
func storeBigTrace(t *testing.T, st *store.Store, n uint64) int {
	t.Helper()
	size := 0
	id := tid(n)
	pad := strings.Repeat("p", bigPad)
	for r := range bigRequests {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "big")
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range bigPerRequest {
			sp := ss.AppendEmpty()
			sp.SetTraceID(id)
			var sid [8]byte
			binary.BigEndian.PutUint64(sid[:], uint64(bigFirst+r*bigPerRequest+k))
			sp.SetSpanID(sid)
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
			sp.SetName("step")
			sp.Attributes().PutStr("pad", pad)
		}
		var m ptrace.ProtoMarshaler
		req, err := m.MarshalTraces(td)
		require.NoError(t, err)
		size += len(req)
		require.True(t, st.AppendSpans([][16]byte{id}, req))
		if r%16 == 15 {
			require.NoError(t, st.Sync(context.Background()))
		}
	}
	require.NoError(t, st.Sync(context.Background()))
	return size
}

// probeSink counts the spans it is handed by span number, and measures the
// live heap at each call: what the sender holds while the next consumer
// has its spans.
type probeSink struct {
	mu    sync.Mutex
	seen  map[uint64]int // span numbers below bigFirst
	big   []uint8        // span numbers from bigFirst on
	marks map[string]int // tracestates
	calls int
	spans int
	peak  int64
}

func newProbeSink() *probeSink {
	return &probeSink{seen: map[uint64]int{}, big: make([]uint8, bigSpans), marks: map[string]int{}}
}

func (p *probeSink) emit(_ context.Context, td ptrace.Traces) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				n := binary.BigEndian.Uint64(id[:])
				if n >= bigFirst && n < bigFirst+bigSpans {
					p.big[n-bigFirst]++
				} else {
					p.seen[n]++
				}
				p.marks[sp.TraceState().AsRaw()]++
				p.spans++
			}
		}
	}
	p.peak = max(p.peak, liveHeap())
	return nil
}

func (p *probeSink) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spans
}

// assertOnce checks that every span of the big trace, and the small ones
// numbered small, came exactly once.
func (p *probeSink) assertOnce(t *testing.T, small ...uint64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	missing, twice := 0, 0
	for _, c := range p.big {
		switch {
		case c == 0:
			missing++
		case c > 1:
			twice++
		}
	}
	assert.Zero(t, missing, "spans of the big trace never sent")
	assert.Zero(t, twice, "spans of the big trace sent more than once")
	for _, n := range small {
		assert.Equal(t, 1, p.seen[n], "span %d", n)
	}
	assert.Len(t, p.seen, len(small))
}

// storedTraceHeap bounds the heap a keep or a rescue of the big trace may
// hold beyond what the process held before it, whatever the trace's size:
// its chunks of storedChunkBytes (1 MiB) and their pdata, a store block's
// buffers while it is read (up to 8 MiB, 24 MiB with -race: see
// extension's blockBuffers) and the set of the spans sent (16 B a span
// and the map's overhead). The whole trace is 32 MiB of OTLP.
const storedTraceHeap = 24 << 20

// TestKeepStoredBigTraceBounded: KeepStored read the whole stored trace
// into memory, decoded all of it into pdata and handed it on in one
// request. It sends it in chunks now: every span exactly once, marked as a
// retroactive keep, with the heap it holds bounded whatever the trace's
// size.
func TestKeepStoredBigTraceBounded(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	sink := newProbeSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, sink.emit, clk)
	dropTraces(t, b, clk, 5)
	size := storeBigTrace(t, st, 5)
	base := liveHeap()

	n, err := b.KeepStored(ctx, tid(5))
	require.NoError(t, err)
	assert.Equal(t, bigSpans+2, n)
	sink.assertOnce(t, 1, 2)
	assert.Equal(t, map[string]int{"tailsift=retro": bigSpans + 2}, sink.marks)
	held := sink.peak - base
	t.Logf("a trace of %d MiB stored: %d calls; the keep held %d MiB of heap at most", size>>20, sink.calls, held>>20)
	assert.Less(t, held, int64(storedTraceHeap), "a keep of a 32 MiB trace held %d MiB of heap", held>>20)
}

// TestRescueBigTraceBounded: a late ERROR span of a big dropped trace made
// the rescuer read the whole stored trace, summarize it, decode all of it
// into pdata and hand it on in one request. It reads and sends it in
// chunks now: every span exactly once, the late one included, marked as a
// rescue, with the heap it holds bounded whatever the trace's size.
func TestRescueBigTraceBounded(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	sink := newProbeSink()
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, sink.emit, clk)
	dropTraces(t, b, clk, 7)
	size := storeBigTrace(t, st, 7)
	base := liveHeap()

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 999, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	require.Eventually(t, func() bool { return sink.total() >= bigSpans+3 }, 60*time.Second, 10*time.Millisecond)
	b.CloseStore() // the rescuer is done
	sink.assertOnce(t, 1, 2, 999)
	assert.Equal(t, map[string]int{"tailsift=rescue": bigSpans + 3}, sink.marks)
	held := sink.peak - base
	t.Logf("a trace of %d MiB stored: %d calls; the rescue held %d MiB of heap at most", size>>20, sink.calls, held>>20)
	assert.Less(t, held, int64(storedTraceHeap), "a rescue of a 32 MiB trace held %d MiB of heap", held>>20)
}

// TestKeepStoredBigTracePartialFailure: the next consumer refuses the
// third request of a keep for good. The keep fails, the store does not
// record it delivered (the first requests went: with the delivery
// recorded after the first, as the whole trace's used to be, a retry was
// refused and the rest never went), and asked again it sends every span:
// those of the first two requests a second time (at least once).
func TestKeepStoredBigTracePartialFailure(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	sink := newProbeSink()
	var calls atomic.Int32
	emit := func(ctx context.Context, td ptrace.Traces) error {
		if calls.Add(1) == 3 {
			return consumererror.NewPermanent(errors.New("refused"))
		}
		return sink.emit(ctx, td)
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBuffer(t, st, emit, clk)
	dropTraces(t, b, clk, 5)
	storeBigTrace(t, st, 5)

	_, err := b.KeepStored(ctx, tid(5))
	require.Error(t, err)
	require.NoError(t, st.Sync(ctx))
	info, err := st.TraceInfo(tid(5))
	require.NoError(t, err)
	assert.True(t, info.Decided && info.Decision.Keep)
	assert.False(t, info.Delivered, "not delivered: the rest did not go")
	first := sink.total()
	assert.Positive(t, first)

	n, err := b.KeepStored(ctx, tid(5))
	require.NoError(t, err, "asked again")
	assert.Equal(t, bigSpans+2, n)
	require.NoError(t, st.Sync(ctx))
	info, err = st.TraceInfo(tid(5))
	require.NoError(t, err)
	assert.True(t, info.Delivered)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	twice := 0
	for _, c := range sink.big {
		require.Positive(t, c, "every span sent")
		if c == 2 {
			twice++
		}
	}
	assert.Equal(t, first, twice+2, "the spans of the first two requests came twice, the others once")
}
