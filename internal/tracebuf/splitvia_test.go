package tracebuf

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/wire"
)

// viaLog is an ingest for IngestVia that hands each request to the buffer
// and records the queue weight of each.
type viaLog struct {
	b       *Buffer
	mu      sync.Mutex
	weights []int64
}

func (v *viaLog) ingest(ctx context.Context, buf []byte, done func()) (int, error) {
	v.mu.Lock()
	v.weights = append(v.weights, QueueWeight(len(buf), len(spansOfBuf(buf)), 0))
	v.mu.Unlock()
	return v.b.IngestOwned(ctx, buf, done)
}

func spansOfBuf(buf []byte) []wire.Span {
	var b wire.Batch
	if wire.Scan(buf, &b) != nil {
		return nil
	}
	return b.Spans
}

// IngestVia, the way through a cluster node: a request within the queue
// goes to ingest whole; one heavier is handed to it in pieces within a
// quarter of the queue, every span once, spans with bad IDs counted, the
// request's buffer released once and never read after.
func TestIngestVia(t *testing.T) {
	cfg := splitConfig()
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	log := &pieceLog{}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs, Accepted: log.accepted})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()

	v := &viaLog{b: b}
	light := heavySpec{first: 900, resources: 1, scopes: 1, traces: 1, spans: 10, pad: 40}.encode(t)
	n, err := b.IngestVia(ctx, light, nil, v.ingest)
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	require.Len(t, v.weights, 1, "a light request goes whole")

	h := heavySpec{first: 1, resources: 2, scopes: 2, traces: 6, spans: 250, pad: 40}
	req := bytes.Join([][]byte{h.encode(t), invalidSpans(t, 3)}, nil)
	require.Greater(t, heavyWeight(t, req), int64(1<<20))
	var want []spanKey
	for _, k := range spansOf(t, req) {
		if k.trace != ([16]byte{}) {
			want = append(want, k)
		}
	}
	v.weights = nil
	before := len(log.all())
	var done poisonDone
	n, err = b.IngestVia(ctx, req, done.fn(req), v.ingest)
	assert.Equal(t, len(want)+3, n)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Equal(t, 3, inv.Rejected)
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, 1, done.count(), "released once")
	require.Greater(t, len(v.weights), 4)
	for i, w := range v.weights {
		assert.LessOrEqual(t, w, int64(1<<20)/4, "piece %d", i)
	}
	var got []spanKey
	for _, p := range log.all()[before:] {
		got = append(got, p.spans...)
	}
	assert.Equal(t, want, got, "every span once, under its resource and scope")
	received, _, refused := obs.get()
	assert.Equal(t, 10+len(want), received)
	assert.Equal(t, map[string]int{RefusedInvalid: 3}, refused)
	clk.Advance(cfg.Completion.MaxWait)
	require.NoError(t, b.Sync(ctx))
	for _, tr := range h.traceNumbers() {
		assert.Equal(t, h.spans, out.count(tid(tr)), "error trace %d kept whole", tr)
	}
}

// IngestVia refused part-way: retryable, each span counted once, those of
// the pieces never offered included.
func TestIngestViaRefusedPartWay(t *testing.T) {
	cfg := splitConfig()
	obs := newCounts()
	next := &stall{entered: make(chan struct{}), release: make(chan struct{}), out: &collector{spans: map[[16]byte]int{}}}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, next.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	var unstall sync.Once
	defer func() {
		unstall.Do(func() { close(next.release) })
		require.NoError(t, b.Shutdown(context.Background()))
	}()
	ctx := context.Background()
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1000}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait)
	<-next.entered
	before, _, _ := obs.get()

	req := heavySpec{first: 1, resources: 2, scopes: 2, traces: 8, spans: 250, pad: 40}.encode(t)
	total := len(spansOf(t, req))
	var done poisonDone
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = b.IngestVia(wctx, req, done.fn(req), (&viaLog{b: b}).ingest)
	cancel()
	var refusal *RefusedError
	require.ErrorAs(t, err, &refusal)
	received, _, refused := obs.get()
	taken := received - before
	require.Positive(t, taken)
	assert.Equal(t, taken, refusal.Taken)
	assert.Equal(t, total-taken, refusal.Spans)
	assert.Equal(t, total, taken+refused[RefusedQueueFull], "each span counted once: %d taken, refused %v", taken, refused)
	assert.Equal(t, 1, done.count(), "released once")
}
