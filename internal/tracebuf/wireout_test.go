package tracebuf

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// wireCalls records what the wire output is handed, and answers with errs
// first, one per call.
type wireCalls struct {
	mu    sync.Mutex
	errs  []error
	calls int
	reqs  [][]byte // delivered requests
	spans []int    // their span counts, as the buffer gave them
	kept  int      // SetKeptWire hook calls
}

func (w *wireCalls) emit(_ context.Context, req []byte, spans int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if len(w.errs) > 0 {
		err := w.errs[0]
		w.errs = w.errs[1:]
		return err
	}
	w.reqs = append(w.reqs, append([]byte(nil), req...))
	w.spans = append(w.spans, spans)
	return nil
}

func (w *wireCalls) keptWire(*wire.Batch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kept++
}

func (w *wireCalls) traces(t *testing.T) []ptrace.Traces {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ptrace.Traces
	for i, req := range w.reqs {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
		require.NoError(t, err)
		require.Equal(t, w.spans[i], td.SpanCount(), "the span count handed with request %d", i)
		out = append(out, td)
	}
	return out
}

// wireTestConfig keeps error traces whole and a quarter of the others, and
// annotates every kept span, so that both outputs mark and annotate.
func wireTestConfig() Config {
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Shards = 2
	cfg.Output.AnnotateSpans = true
	cfg.Policies = append(cfg.Policies,
		sampling.NewPolicyConfig("some", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 25}))
	return cfg
}

// hiRandom is a trace number whose ID's randomness is 15/16 of its range.
const hiRandom = 0xF0 << 48

// feedWireTest sends the same traffic to b: error traces, others, a
// client's retry (duplicate spans), and late spans of kept traces after
// the decision; it returns once everything kept is handed on.
func feedWireTest(t *testing.T, b *Buffer, clk *clocktest.Fake) {
	ctx := context.Background()
	var ids []uint64
	for n := uint64(1); n <= 25; n++ {
		ids = append(ids, n)
	}
	for n := range uint64(15) {
		// Randomness (the low 56 bits of the ID) above a quarter's
		// threshold: the probabilistic policy keeps them.
		ids = append(ids, hiRandom+n)
	}
	require.NoError(t, b.Ingest(ctx, encode(t, ids, 1, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Ingest(ctx, encode(t, ids[:10], 2, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, ids[:10], 2, ptrace.StatusCodeError))) // a retry
	require.NoError(t, b.Ingest(ctx, encodePairs(t, ids[5:15], []uint64{3, 4})))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // quiet
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, b.Ingest(ctx, encode(t, ids, 5, ptrace.StatusCodeUnset))) // late
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // the output batch's timeout
	require.NoError(t, b.Sync(ctx))
}

// keptJSON returns every span in tds as JSON under its resource and scope,
// sorted, so that two outputs compare whatever their request boundaries.
func keptJSON(t *testing.T, tds []ptrace.Traces) []string {
	var out []string
	for _, td := range tds {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					one := ptrace.NewTraces()
					ors := one.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(ors.Resource())
					oss := ors.ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(oss.Scope())
					sp.CopyTo(oss.Spans().AppendEmpty())
					js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(one)
					require.NoError(t, err)
					out = append(out, string(js))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// tdSink keeps a copy of everything the pdata output hands on.
type tdSink struct {
	mu  sync.Mutex
	tds []ptrace.Traces
}

func (k *tdSink) emit(_ context.Context, td ptrace.Traces) error {
	c := ptrace.NewTraces()
	td.CopyTo(c)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tds = append(k.tds, c)
	return nil
}

func (k *tdSink) all() []ptrace.Traces {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]ptrace.Traces(nil), k.tds...)
}

// TestWireOutputMatchesPdata: the wire output hands on the same spans, with
// the same resources, scopes, tracestates and annotations, as the pdata
// output does for the same traffic; the pdata Emit is not called, and the
// SetKeptWire hook sees every request.
func TestWireOutputMatchesPdata(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.NewFake(time.Unix(0, 0))
	ref := &tdSink{}
	b, err := New(wireTestConfig(), ref.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	feedWireTest(t, b, clk)
	require.NoError(t, b.Shutdown(ctx))

	clk2 := clocktest.NewFake(time.Unix(0, 0))
	w := &wireCalls{}
	unused := &tdSink{}
	b2, err := New(wireTestConfig(), unused.emit, Settings{Clock: clk2})
	require.NoError(t, err)
	b2.SetEmitWire(w.emit)
	b2.SetKeptWire(w.keptWire)
	b2.Start()
	feedWireTest(t, b2, clk2)
	require.NoError(t, b2.Shutdown(ctx))

	got := w.traces(t)
	assert.Empty(t, unused.all(), "the pdata Emit is not called")
	assert.Equal(t, len(got), w.kept, "the SetKeptWire hook sees every request")
	want := keptJSON(t, ref.all())
	require.NotEmpty(t, want)
	assert.Equal(t, want, keptJSON(t, got))
	counts := map[[16]byte]int{}
	for _, td := range got {
		for id, n := range spanCounts(td) {
			counts[id] += n
		}
	}
	for n := uint64(1); n <= 10; n++ {
		want := 3 // spans 1 and 2 (the retry left out), and the late one
		if n > 5 {
			want = 5 // and spans 3 and 4
		}
		assert.Equal(t, want, counts[tid(n)], "error trace %d", n)
	}
	sampled := 0
	for n := range uint64(15) {
		sampled += counts[tid(hiRandom+n)]
	}
	assert.Positive(t, sampled, "the probabilistic policy kept some of the others, marked with its threshold")
}

// TestWireOutputRetries: a retryable refusal is retried until the output
// takes the request; a permanent one loses it, counted in ExportFailed, as
// for the pdata output.
func TestWireOutputRetries(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		errs      []error
		delivered int
		failed    int
	}{
		{"retryable", []error{errors.New("queue full"), errors.New("queue full")}, 3, 0},
		{"permanent", []error{consumererror.NewPermanent(errors.New("malformed"))}, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 100
			clk := clocktest.NewFake(time.Unix(0, 0))
			obs := newCounts()
			w := &wireCalls{errs: tc.errs}
			b, err := New(cfg, (&tdSink{}).emit, Settings{Clock: clk, Observer: obs})
			require.NoError(t, err)
			b.SetEmitWire(w.emit)
			b.Start()
			require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2, 3}, 1, ptrace.StatusCodeError)))
			require.NoError(t, b.Sync(ctx))
			clk.Advance(time.Second)
			// The batch leaves at a timer wake-up or at Shutdown, which
			// then returns a loss: the count below is what is checked.
			err = b.Shutdown(ctx)
			if tc.failed == 0 {
				require.NoError(t, err)
			}
			delivered := 0
			for _, td := range w.traces(t) {
				delivered += td.SpanCount()
			}
			assert.Equal(t, tc.delivered, delivered)
			assert.Equal(t, len(tc.errs)+min(tc.delivered, 1), w.calls)
			_, failed, _ := obs.get()
			assert.Equal(t, tc.failed, failed)
		})
	}
}

// TestWireOutputRecordsDelivered: with a store, a trace the wire output
// delivered is recorded so: a restart on the crash image does not send it
// again. One it could not deliver is sent again.
func TestWireOutputRecordsDelivered(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	clk := clocktest.NewFake(time.Unix(0, 0))
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	b, err := New(cfg, (&tdSink{}).emit, Settings{Clock: clk})
	require.NoError(t, err)
	down := errors.New("backend down")
	w := &wireCalls{}
	b.SetEmitWire(func(ctx context.Context, req []byte, spans int) error {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
		require.NoError(t, err)
		if spanCounts(td)[tid(2)] > 0 {
			return consumererror.NewPermanent(down) // trace 2's request is lost
		}
		return w.emit(ctx, req, spans)
	})
	b.AttachStore(st)
	b.Start()
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // trace 1 is decided and delivered
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{2}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second) // trace 2 is decided; its delivery fails
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	require.Len(t, w.traces(t), 1)
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 here
	require.NoError(t, b.Shutdown(ctx))
	b.CloseStore()

	out := newChanSink()
	clk2 := clocktest.NewFake(time.Unix(100, 0))
	b2 := storeBuffer(t, openTestStore(t, image), out.emit, clk2)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the undelivered trace's span is taken in again")
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second)
	require.NoError(t, b2.Sync(ctx))
	assert.Equal(t, map[[16]byte]int{tid(2): 1}, spanCounts(out.next(t)))
}

// TestWireOutputExporterMustHaveStarted: output::exporter names a router
// that is not registered: starting fails, naming the key.
func TestWireOutputExporterMustHaveStarted(t *testing.T) {
	cfg := testBufferConfig()
	id := component.MustNewIDWithName("tailsift", "absent")
	cfg.Output.Exporter = &id
	b, err := New(cfg, (&tdSink{}).emit, Settings{})
	require.NoError(t, err)
	err = b.StartWithStorage(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `output::exporter: "tailsift/absent" has not started`)
}

// TestOutputExporterType: output::exporter must name a tailsift exporter.
func TestOutputExporterType(t *testing.T) {
	cfg := testBufferConfig()
	id := component.MustNewIDWithName("otlp_grpc", "backend")
	cfg.Output.Exporter = &id
	err := cfg.Output.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `exporter: "otlp_grpc/backend" is not a tailsift exporter`)
	tid := component.MustNewIDWithName("tailsift", "backend")
	cfg.Output.Exporter = &tid
	assert.NoError(t, cfg.Output.Validate())
}
