package tracebuf

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

// An adversarial review of the split (split.go): every span of a request
// heavier than the queue is counted once, taken in or refused, on every
// path; the request's buffer is released once and never read after.

// invalidSpans is a request of n spans with an all-zero trace ID.
func invalidSpans(t *testing.T, n int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for k := range n {
		sp := ss.AppendEmpty()
		sp.SetSpanID([8]byte{byte(k + 1)})
		sp.SetName("no trace ID")
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// poisonDone is a done callback that counts its calls and overwrites the
// buffer it was given, which the buffer must not read afterwards.
type poisonDone struct {
	mu    sync.Mutex
	calls int
}

func (d *poisonDone) fn(buf []byte) func() {
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.calls++
		for i := range buf {
			buf[i] = 0xff
		}
	}
}

func (d *poisonDone) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// Spans too heavy for the whole queue, first, in the middle or last, with
// spans with bad IDs mixed in: each span of the request is counted once,
// taken in, too_large or invalid; the error counts the same; the buffer
// is released once, and what was taken in is what came, though the
// buffer is overwritten once released.
func TestSplitAccountingMatrix(t *testing.T) {
	huge := func(t *testing.T, n uint64) []byte { return encodeSized(t, []uint64{n}, 1, 1<<20) }
	small := func(t *testing.T, first uint64) []byte {
		return heavySpec{first: first, resources: 1, scopes: 2, traces: 2, spans: 100, pad: 40}.encode(t)
	}
	cases := []struct {
		name        string
		parts       func(t *testing.T) [][]byte
		valid, huge int
		invalid     int
	}{
		{"huge first", func(t *testing.T) [][]byte {
			return [][]byte{huge(t, 500), small(t, 1), invalidSpans(t, 3), small(t, 10)}
		}, 800, 1, 3},
		{"huge middle", func(t *testing.T) [][]byte {
			return [][]byte{small(t, 1), invalidSpans(t, 3), huge(t, 500), small(t, 10)}
		}, 800, 1, 3},
		{"huge last", func(t *testing.T) [][]byte {
			return [][]byte{small(t, 1), small(t, 10), invalidSpans(t, 3), huge(t, 500)}
		}, 800, 1, 3},
		{"two huge", func(t *testing.T) [][]byte {
			return [][]byte{huge(t, 500), small(t, 1), huge(t, 501), invalidSpans(t, 2), small(t, 10)}
		}, 800, 2, 2},
		{"huge alone with bad IDs", func(t *testing.T) [][]byte {
			return [][]byte{invalidSpans(t, 4), huge(t, 500)}
		}, 0, 1, 4},
		{"no huge, bad IDs", func(t *testing.T) [][]byte {
			parts := [][]byte{invalidSpans(t, 5)}
			for k := range uint64(14) {
				parts = append(parts, small(t, 10*k+1))
			}
			return parts
		}, 5600, 0, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := splitConfig()
			obs := newCounts()
			log := &pieceLog{}
			b, err := New(cfg, (&collector{spans: map[[16]byte]int{}}).emit,
				Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Observer: obs, Accepted: log.accepted})
			require.NoError(t, err)
			b.Start()
			defer func() { require.NoError(t, b.Shutdown(context.Background())) }()

			req := bytes.Join(tc.parts(t), nil)
			require.Greater(t, heavyWeight(t, req), int64(1<<20), "the request weighs more than the queue")
			var want []spanKey
			for _, k := range spansOf(t, req) {
				if k.trace != tid(500) && k.trace != tid(501) && k.trace != ([16]byte{}) {
					want = append(want, k) // the small valid spans
				}
			}
			var done poisonDone
			n, err := b.IngestOwned(context.Background(), req, done.fn(req))
			total := tc.valid + tc.huge + tc.invalid
			assert.Equal(t, total, n, "spans in the request")
			require.NoError(t, b.Sync(context.Background()))
			assert.Equal(t, 1, done.count(), "the request's buffer released once")

			received, _, refused := obs.get()
			assert.Equal(t, tc.valid, received, "taken in")
			assert.Equal(t, tc.huge, refused[RefusedTooLarge], "too_large")
			assert.Equal(t, tc.invalid, refused[RefusedInvalid], "invalid")
			assert.Equal(t, total, received+refused[RefusedTooLarge]+refused[RefusedInvalid]+refused[RefusedQueueFull],
				"each span counted once: %d taken, refused %v", received, refused)

			var got []spanKey
			for _, p := range log.all() {
				got = append(got, p.spans...)
			}
			assert.Equal(t, want, got, "the spans taken in are those that came, each once, under their resource and scope")

			switch {
			case tc.huge > 0:
				var tl *TooLargeError
				require.ErrorAs(t, err, &tl)
				assert.Equal(t, tc.huge, tl.Spans)
				assert.Equal(t, tc.valid, tl.Taken)
				assert.Equal(t, tc.invalid, tl.Invalid)
				assert.Equal(t, tc.valid > 0, tl.Partial())
			default:
				var inv *InvalidError
				require.ErrorAs(t, err, &inv)
				assert.True(t, inv.Partial())
				assert.Equal(t, tc.invalid, inv.Rejected)
			}
		})
	}
}

// A buffer shutting down while a request heavier than the queue waits for
// room for one of its pieces: the split ends promptly, refused as
// retryable (the pieces before taken), each span counted once, the
// request's buffer released once.
func TestSplitShutdownMidway(t *testing.T) {
	cfg := splitConfig()
	obs := newCounts()
	next := &stall{entered: make(chan struct{}), release: make(chan struct{}), out: &collector{spans: map[[16]byte]int{}}}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, next.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	ctx := context.Background()

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1000}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait)
	<-next.entered
	before, _, _ := obs.get()

	req := bytes.Join([][]byte{
		heavySpec{first: 1, resources: 2, scopes: 2, traces: 8, spans: 250, pad: 40}.encode(t),
		invalidSpans(t, 3),
	}, nil)
	valid := len(spansOf(t, req)) - 3
	var done poisonDone
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := b.IngestOwned(ctx, req, done.fn(req))
		res <- result{n, err}
	}()
	// Once a piece is taken in, the split is under way (and then waits for
	// room: the shard is stalled): shut down.
	for {
		if received, _, _ := obs.get(); received > before {
			break
		}
		runtime.Gosched()
	}
	shut := make(chan error, 1)
	go func() { shut <- b.Shutdown(ctx) }()
	var r result
	select {
	case r = <-res:
	case <-time.After(10 * time.Second):
		t.Fatal("the split did not end when Shutdown began")
	}
	close(next.release)
	require.NoError(t, <-shut)

	require.Error(t, r.err)
	assert.ErrorIs(t, r.err, ErrShutdown)
	var refusal *RefusedError
	require.ErrorAs(t, r.err, &refusal)
	received, _, refused := obs.get()
	taken := received - before
	assert.Equal(t, taken, refusal.Taken)
	assert.Equal(t, valid-taken, refusal.Spans)
	assert.Equal(t, valid, taken+refused[RefusedQueueFull], "each valid span counted once: %d taken, refused %v", taken, refused)
	assert.Equal(t, 1, done.count(), "the request's buffer released once")
}

// Three requests, each heavier than the queue, split at once into a queue
// whose shard is slow: all three are taken in whole, none starving the
// others until their context ends.
func TestSplitConcurrent(t *testing.T) {
	cfg := splitConfig()
	cfg.Shards = 2
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, out.emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()

	specs := []heavySpec{
		{first: 1, resources: 2, scopes: 2, traces: 6, spans: 250, pad: 40},
		{first: 100, resources: 2, scopes: 2, traces: 6, spans: 250, pad: 40},
		{first: 200, resources: 2, scopes: 2, traces: 6, spans: 250, pad: 40},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	dones := make([]poisonDone, len(specs))
	total := 0
	for i, h := range specs {
		req := h.encode(t)
		require.Greater(t, heavyWeight(t, req), int64(1<<20))
		total += len(spansOf(t, req))
		wg.Go(func() { _, errs[i] = b.IngestOwned(ctx, req, dones[i].fn(req)) })
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "request %d", i)
		assert.Equal(t, 1, dones[i].count())
	}
	received, _, refused := obs.get()
	assert.Equal(t, total, received)
	assert.Empty(t, refused)
	require.NoError(t, b.Sync(context.Background()))
	clk.Advance(cfg.Completion.MaxWait)
	require.NoError(t, b.Sync(context.Background()))
	for _, h := range specs {
		for _, tr := range h.traceNumbers() {
			assert.Equal(t, h.spans, out.count(tid(tr)), "error trace %d kept whole", tr)
		}
	}
}

// A request heavier than the queue, taken in as pieces, is in the store:
// after a kill -9 with its traces undecided, a buffer on the crash image
// replays the pieces and keeps its error traces whole, each span once.
func TestSplitRequestReplayedAfterCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	small := func(c *Config) { c.Buffer.MaxQueuedBytes = 1 << 20; c.Completion.MaxSpans = 1 << 20 }
	b := storeBufferWith(t, st, newChanSink().emit, clocktest.NewFake(time.Unix(0, 0)), small)
	h := heavySpec{first: 1, resources: 2, scopes: 2, traces: 6, spans: 250, pad: 40}
	req := h.encode(t)
	require.Greater(t, heavyWeight(t, req), int64(1<<20))
	var done poisonDone
	_, err := b.IngestOwned(ctx, req, done.fn(req))
	require.NoError(t, err)
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, st.Sync(ctx))
	require.Equal(t, 1, done.count())
	image := crashCopy(t, dir) // kill -9 here: nothing was decided

	clk := clocktest.NewFake(time.Unix(100, 0))
	out := &collector{spans: map[[16]byte]int{}}
	b2 := storeBufferWith(t, openTestStore(t, image), out.emit, clk, small)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(h.traceNumbers())*h.spans, n, "every span of the pieces replayed once")
	require.NoError(t, b2.Sync(ctx))
	clk.Advance(time.Minute)
	require.NoError(t, b2.Sync(ctx))
	clk.Advance(time.Minute)
	require.NoError(t, b2.Sync(ctx))
	for _, tr := range h.traceNumbers() {
		assert.Equal(t, h.spans, out.count(tid(tr)), "error trace %d kept whole after the crash", tr)
	}
}

// A TooLargeError of a request with spans of bad IDs too: the message
// accounts for every span of the request, as rejected_spans (too large
// and bad IDs) does, not only the spans too large and those taken in.
func TestTooLargeMessageCountsBadIDs(t *testing.T) {
	err := &TooLargeError{Spans: 1, Weight: 3 << 20, Max: 2 << 20, Taken: 800, Invalid: 3}
	assert.Contains(t, err.Error(), "3 spans with bad IDs refused")
	assert.Contains(t, err.Error(), "the other 800 spans of the request were taken in")
	alone := &TooLargeError{Spans: 2, Weight: 3 << 20, Max: 2 << 20, Invalid: 1}
	assert.Contains(t, alone.Error(), "1 span with bad IDs refused")
}

// A trace whose spans are spread over many pieces, on four shards, with a
// probabilistic policy: each trace is decided once, whole (all its spans
// kept, each once, or none), every kept span with the same ot=th.
func TestSplitTraceDecidedOnceWhole(t *testing.T) {
	cfg := splitConfig()
	cfg.Shards = 4
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("half", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 50}),
	}
	var mu sync.Mutex
	kept := map[[16]byte]map[[8]byte][]string{}
	emit := func(_ context.Context, td ptrace.Traces) error {
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					m := kept[sp.TraceID()]
					if m == nil {
						m = map[[8]byte][]string{}
						kept[sp.TraceID()] = m
					}
					m[sp.SpanID()] = append(m[sp.SpanID()], sp.TraceState().AsRaw())
				}
			}
		}
		return nil
	}
	clk := clocktest.NewFake(time.Unix(0, 0))
	log := &pieceLog{}
	b, err := New(cfg, emit, Settings{Clock: clk, Accepted: log.accepted})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()

	// Spans interleaved trace by trace: each trace in every piece.
	const traces, spans = 40, 150
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	pad := strings.Repeat("p", 60)
	for k := range spans {
		for n := range uint64(traces) {
			sp := ss.AppendEmpty()
			id := tid(n + 1) // its randomness (the last 7 bytes) spread
			binary.BigEndian.PutUint64(id[8:], (n+1)*0x9E3779B97F4A7C15)
			sp.SetTraceID(id)
			sp.SetSpanID([8]byte{0, 0, 0, 0, 0, 0, byte(k >> 8), byte(k) + 1})
			if k > 0 {
				sp.SetParentSpanID([8]byte{0, 0, 0, 0, 0, 0, 0, 1})
			}
			sp.Attributes().PutStr("pad", pad)
		}
	}
	var m ptrace.ProtoMarshaler
	req, err := m.MarshalTraces(td)
	require.NoError(t, err)
	require.Greater(t, heavyWeight(t, req), int64(1<<20))
	require.NoError(t, b.Ingest(context.Background(), req))
	require.Greater(t, len(log.all()), 4, "pieces")
	require.NoError(t, b.Sync(context.Background()))
	clk.Advance(cfg.Completion.MaxWait)
	require.NoError(t, b.Sync(context.Background()))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(context.Background()))

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, kept, "nothing kept at 50 %")
	require.Less(t, len(kept), traces, "everything kept at 50 %")
	for id, byspan := range kept {
		assert.Len(t, byspan, spans, "trace %x kept whole", id)
		var th string
		for sid, states := range byspan {
			require.Len(t, states, 1, "span %x of trace %x delivered once", sid, id)
			if th == "" {
				th = states[0]
			}
			assert.Equal(t, th, states[0], "one threshold for the whole trace %x", id)
		}
		assert.Contains(t, th, "ot=th:8", "50 %: th 8")
	}
}
