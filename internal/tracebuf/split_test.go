package tracebuf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/wire"
)

// A request heavier than the whole of buffer.max_queued_bytes is taken in
// as pieces within the budget, split at resource, scope and span
// boundaries of its wire bytes, each a valid request with its spans'
// resource and scope.

// heavySpec describes a request: resources × scopes groups, each holding
// traces traces of spans spans with pad bytes of attribute, the last span
// of each trace an error. Trace numbers start at first and run on across
// groups.
type heavySpec struct {
	first                                 uint64
	resources, scopes, traces, spans, pad int
}

func (h heavySpec) encode(t *testing.T) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	pad := strings.Repeat("p", h.pad)
	n := h.first
	for r := range h.resources {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		for s := range h.scopes {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("scope-%d-%d", r, s))
			ss.Scope().SetVersion("1.0")
			for range h.traces {
				for k := range h.spans {
					sp := ss.Spans().AppendEmpty()
					sp.SetTraceID(tid(n))
					var sid [8]byte
					binary.BigEndian.PutUint64(sid[:], uint64(k)+2)
					sp.SetSpanID(sid)
					sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
					sp.SetName("op")
					sp.Attributes().PutStr("pad", pad)
					if k == h.spans-1 {
						sp.Status().SetCode(ptrace.StatusCodeError)
					}
				}
				n++
			}
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

func (h heavySpec) traceNumbers() []uint64 {
	var ns []uint64
	for i := range uint64(h.resources * h.scopes * h.traces) {
		ns = append(ns, h.first+i)
	}
	return ns
}

// splitConfig is a buffer of one shard whose traces are decided when
// quiet for a second, with a 1 MiB queue.
func splitConfig() Config {
	cfg := testBufferConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	cfg.Completion.MaxSpans = 1 << 20
	cfg.Output.BatchTimeout = 0
	return cfg
}

// pieceLog records what the Accepted hook sees of each request taken in.
type pieceLog struct {
	mu     sync.Mutex
	pieces []loggedPiece
}

type loggedPiece struct {
	spans  []spanKey
	scopes int
	// weight is the piece's queue weight without its framing: its spans'
	// bytes and its scan.
	weight int64
}

// spanKey is a span with the resource and scope it came under.
type spanKey struct {
	trace         [16]byte
	span          [8]byte
	resource, scp string
}

func (l *pieceLog) accepted(b *wire.Batch) {
	p := loggedPiece{scopes: len(b.Scopes)}
	raw := 0
	for i := range b.Spans {
		sp := &b.Spans[i]
		sc := &b.Scopes[sp.Scope]
		p.spans = append(p.spans, spanKey{trace: sp.TraceID, span: sp.SpanID, resource: string(sc.Resource), scp: string(sc.Scope)})
		raw += len(sp.Raw)
	}
	p.weight = QueueWeight(raw, len(b.Spans), len(b.Scopes))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pieces = append(l.pieces, p)
}

func (l *pieceLog) all() []loggedPiece {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedPiece(nil), l.pieces...)
}

// spansOf is what Scan reads of buf, as the pieces log it.
func spansOf(t *testing.T, buf []byte) []spanKey {
	t.Helper()
	l := &pieceLog{}
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	l.accepted(&b)
	return l.pieces[0].spans
}

// heavyWeight is the queue weight of buf as Ingest counts it, its
// capacity being its length.
func heavyWeight(t *testing.T, buf []byte) int64 {
	t.Helper()
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	return QueueWeight(len(buf), len(b.Spans), len(b.Scopes))
}

// onceDone is a done callback that counts its calls and clears the buffer
// it was given, which the buffer must not read afterwards.
type onceDone struct {
	mu    sync.Mutex
	calls int
}

func (d *onceDone) fn(buf []byte) func() {
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.calls++
		clear(buf)
	}
}

func (d *onceDone) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// The pieces: each within a quarter of the queue, together every span of
// the request once, in its order, each under its own resource and scope.
// The error traces are kept whole, the request's pooled buffer is released
// once, and no span is refused. Before, the request was refused whole,
// permanently (TooLargeError).
func TestOverBudgetRequestTakenInPieces(t *testing.T) {
	cfg := splitConfig()
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	log := &pieceLog{}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs, Accepted: log.accepted})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()

	h := heavySpec{first: 1, resources: 3, scopes: 2, traces: 4, spans: 250, pad: 40}
	req := h.encode(t)
	want := spansOf(t, req)
	weight := heavyWeight(t, req)
	require.Less(t, len(req), 1<<20, "its bytes fit the queue")
	require.Greater(t, weight, int64(1<<20), "its weight does not")

	var done onceDone
	n, err := b.IngestOwned(context.Background(), req, done.fn(req))
	require.NoError(t, err, "a request of %d bytes weighing %d (%.2f× buffer.max_queued_bytes)", len(req), weight, float64(weight)/(1<<20))
	assert.Equal(t, len(want), n)
	require.NoError(t, b.Sync(context.Background()))
	assert.Equal(t, 1, done.count(), "the request's buffer released once")

	pieces := log.all()
	require.Greater(t, len(pieces), 4, "pieces of at most a quarter of the queue")
	var got []spanKey
	for i, p := range pieces {
		assert.LessOrEqual(t, p.weight, int64(1<<20)/4, "piece %d of %d spans", i, len(p.spans))
		got = append(got, p.spans...)
	}
	assert.Equal(t, want, got, "every span once, in order, under its resource and scope")
	received, _, refused := obs.get()
	assert.Equal(t, len(want), received)
	assert.Empty(t, refused)

	clk.Advance(cfg.Completion.MaxWait)
	require.NoError(t, b.Sync(context.Background()))
	for _, tr := range h.traceNumbers() {
		assert.Equal(t, h.spans, out.count(tid(tr)), "error trace %d kept whole", tr)
	}
}

// stall is a next consumer that holds its first call until release is
// closed, stalling the shard.
type stall struct {
	entered, release chan struct{}
	once             sync.Once
	out              *collector
}

func (s *stall) emit(ctx context.Context, td ptrace.Traces) error {
	s.once.Do(func() {
		close(s.entered)
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	})
	return s.out.emit(ctx, td)
}

// A piece that finds no room before the caller's context ends refuses the
// rest of the request, retryably: the pieces before it are taken in, and
// every span of the attempt is counted once, taken in or refused
// (queue_full); the error says how many of each. The retry, sent whole,
// brings the pieces taken before again: the spans of a trace still
// buffered are kept once.
func TestOverBudgetRequestRefusedPartWay(t *testing.T) {
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

	// Trace 1000 is decided, and stalls the shard in the next consumer.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1000}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait)
	<-next.entered
	before, _, _ := obs.get()

	h := heavySpec{first: 1, resources: 2, scopes: 2, traces: 8, spans: 250, pad: 40}
	req := h.encode(t)
	total := len(spansOf(t, req))
	var done onceDone
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = b.IngestOwned(wctx, append([]byte(nil), req...), done.fn(nil))
	cancel()
	require.Error(t, err, "the stalled shard left room for the whole request")
	assert.ErrorIs(t, err, ErrQueueFull, "retryable")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var refusal *RefusedError
	require.ErrorAs(t, err, &refusal)
	received, _, refused := obs.get()
	taken := received - before
	require.Positive(t, taken, "no piece was taken before the refusal: nothing to check")
	require.Less(t, taken, total)
	assert.Equal(t, total-taken, refusal.Spans, "the spans refused")
	assert.Equal(t, total, taken+refused[RefusedQueueFull], "each span of the attempt counted once: taken (%d) or refused (%d)", taken, refused[RefusedQueueFull])
	assert.Contains(t, err.Error(), fmt.Sprintf("%d spans taken in", taken))
	assert.Equal(t, 1, done.count(), "the request's buffer released once")

	unstall.Do(func() { close(next.release) })
	require.NoError(t, b.Ingest(ctx, req), "the retry")
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait)
	require.NoError(t, b.Sync(ctx))
	for _, tr := range h.traceNumbers() {
		assert.Equal(t, h.spans, next.out.count(tid(tr)), "error trace %d kept whole, each span once (first attempt took %d spans)", tr, taken)
	}
}

// Only a span that with its resource and scope weighs more than the whole
// queue is refused for its size, permanently, with a message that says so;
// the other spans of its request are taken in. Alone, it is refused so,
// and nothing is taken.
func TestOverBudgetSpanRefused(t *testing.T) {
	cfg := splitConfig()
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()

	huge := encodeSized(t, []uint64{500}, 1, 1<<20)
	small := heavySpec{first: 1, resources: 1, scopes: 1, traces: 2, spans: 100, pad: 40}.encode(t)
	after := heavySpec{first: 3, resources: 1, scopes: 1, traces: 2, spans: 100, pad: 40}.encode(t)
	req := append(append(append([]byte(nil), small...), huge...), after...) // concatenated TracesData merge

	var done onceDone
	_, err = b.IngestOwned(ctx, req, done.fn(req))
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl, "%v", err)
	assert.False(t, errors.Is(err, ErrQueueFull), "permanent")
	assert.Equal(t, 1, tl.Spans)
	assert.Greater(t, tl.Weight, int64(1<<20))
	assert.Contains(t, err.Error(), "a span needs")
	assert.Contains(t, err.Error(), "raise buffer.max_queued_bytes or send smaller spans")
	received, _, refused := obs.get()
	assert.Equal(t, 400, received, "the other spans taken in")
	assert.Equal(t, 1, refused[RefusedTooLarge])
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, 1, done.count())
	clk.Advance(cfg.Completion.MaxWait)
	require.NoError(t, b.Sync(ctx))
	for _, tr := range []uint64{1, 2, 3, 4} {
		assert.Equal(t, 100, out.count(tid(tr)), "error trace %d kept whole", tr)
	}

	n, err := b.IngestOwned(ctx, huge, done.fn(huge))
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, tl.Spans)
	assert.Contains(t, err.Error(), "a span needs")
	received, _, refused = obs.get()
	assert.Equal(t, 400, received, "nothing taken of a request of one span too heavy")
	assert.Equal(t, 2, refused[RefusedTooLarge])
	assert.Equal(t, 2, done.count())

	// The refusal took no room in the queue.
	tctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	require.NoError(t, b.Ingest(tctx, encode(t, []uint64{100}, 1, ptrace.StatusCodeError)), "a small request right after")
}

// Spans another gateway forwarded, or taken in again (a handover given
// back, a replay), came with a cluster control (cluster.Node strips it and
// calls IngestForwarded or IngestAgain): the control belongs to the whole
// request, so such a request is never split, and never refused for its
// weight: it goes in whole, counted as the whole queue.
func TestOverBudgetRequestWithControlNotSplit(t *testing.T) {
	cfg := splitConfig()
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	log := &pieceLog{}
	b, err := New(cfg, out.emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Observer: obs, Accepted: log.accepted})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()

	req := heavySpec{first: 1, resources: 2, scopes: 2, traces: 6, spans: 250, pad: 40}.encode(t)
	require.Greater(t, heavyWeight(t, req), int64(1<<20))
	want := spansOf(t, req)

	n, err := b.IngestForwarded(ctx, append([]byte(nil), req...), nil)
	require.NoError(t, err)
	assert.Equal(t, len(want), n)
	pieces := log.all()
	require.Len(t, pieces, 1, "a forwarded request is taken in whole")
	assert.Equal(t, want, pieces[0].spans)

	n, err = b.IngestAgain(ctx, append([]byte(nil), req...), nil)
	require.NoError(t, err)
	assert.Equal(t, len(want), n)
	require.NoError(t, b.Sync(ctx))
	received, _, refused := obs.get()
	assert.Equal(t, 2*len(want), received)
	assert.Empty(t, refused)
}
