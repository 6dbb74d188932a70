package tracebuf

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

// auditSpan is one span for auditRequest: all under one resource and scope.
type auditSpan struct {
	trace, span, parent uint64
	status              ptrace.StatusCode
	name                string
}

func auditRequest(t testing.TB, spans ...auditSpan) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for _, a := range spans {
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid(a.trace))
		sp.SetSpanID(spanID(a.span))
		if a.parent != 0 {
			sp.SetParentSpanID(spanID(a.parent))
		}
		sp.SetName(a.name)
		sp.Status().SetCode(a.status)
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// auditLog records every span handed on: trace, span number, status, name.
type auditLog struct {
	mu    sync.Mutex
	spans []auditSpan
}

func (l *auditLog) emit(_ context.Context, td ptrace.Traces) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				tr := sp.TraceID()
				l.spans = append(l.spans, auditSpan{
					trace: binary.BigEndian.Uint64(tr[8:]), span: binary.BigEndian.Uint64(id[:]),
					status: sp.Status().Code(), name: sp.Name(),
				})
			}
		}
	}
	return nil
}

func (l *auditLog) snapshot() []auditSpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]auditSpan(nil), l.spans...)
}

// maxSpansStoreBuffer is storeBuffer with completion.max_spans 3.
func maxSpansStoreBuffer(t *testing.T, out Emit) (*Buffer, *clocktest.Fake) {
	t.Helper()
	clk := clocktest.NewFake(time.Unix(0, 0))
	b := storeBufferWith(t, openTestStore(t, t.TempDir()), out, clk, func(c *Config) { c.Completion.MaxSpans = 3 })
	return b, clk
}

// TestCoreMaxSpansErrorSameMessage: with the store, a trace that max_spans
// drops and whose ERROR span comes in a later request is rescued whole; when
// the ERROR span comes in the same request, after the span that reached
// max_spans, it is dropped without being offered to the rescuer (shard.go
// pass 2 only counts it).
func TestCoreMaxSpansErrorSameMessage(t *testing.T) {
	ctx := context.Background()
	for _, same := range []bool{false, true} {
		out := &auditLog{}
		b, clk := maxSpansStoreBuffer(t, out.emit)
		first := []auditSpan{
			{trace: 1, span: 1, name: "root"},
			{trace: 1, span: 2, parent: 1},
			{trace: 1, span: 3, parent: 1},
		}
		errSpan := auditSpan{trace: 1, span: 4, parent: 1, status: ptrace.StatusCodeError}
		if same {
			require.NoError(t, b.Ingest(ctx, auditRequest(t, append(first, errSpan)...)))
		} else {
			require.NoError(t, b.Ingest(ctx, auditRequest(t, first...)))
			require.NoError(t, b.Sync(ctx))
			require.NoError(t, b.Ingest(ctx, auditRequest(t, errSpan)))
		}
		require.NoError(t, b.Sync(ctx))
		// Give the rescuer (its own goroutine) time, then the output batch.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && len(out.snapshot()) == 0 {
			clk.Advance(100 * time.Millisecond)
			require.NoError(t, b.Sync(ctx))
			time.Sleep(20 * time.Millisecond)
		}
		n := len(out.snapshot())
		t.Logf("ERROR span in the same request=%v: %d spans of the error trace emitted", same, n)
		if same && n == 0 {
			t.Errorf("trace with an ERROR span lost: the ERROR span came in the request in which max_spans dropped the trace")
		}
	}
}

// auditReqLog records each request handed on: its spans (trace, span).
type auditReqLog struct {
	mu   sync.Mutex
	reqs [][][2]uint64
}

func (l *auditReqLog) emit(_ context.Context, td ptrace.Traces) error {
	var req [][2]uint64
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id, tr := sp.SpanID(), sp.TraceID()
				req = append(req, [2]uint64{binary.BigEndian.Uint64(tr[8:]), binary.BigEndian.Uint64(id[:])})
			}
		}
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	l.mu.Unlock()
	return nil
}

// TestCoreOutputCuts: kept traces of 1..12 spans and late spans, with
// batch_max_spans 5: every span goes out once, and a request holds at most
// 5 spans unless it is one trace.
func TestCoreOutputCuts(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 1000
	cfg.Output.BatchMaxSpans = 5
	out := &auditReqLog{}
	b, clk := startBuffer(t, cfg, out.emit, nil)
	want := map[[2]uint64]int{}
	var spans []auditSpan
	for n := uint64(1); n <= 40; n++ {
		k := n%12 + 1
		for s := uint64(1); s <= k; s++ {
			sp := auditSpan{trace: n, span: s, parent: 1}
			if s == 1 {
				sp.parent, sp.status = 0, ptrace.StatusCodeError
			}
			spans = append(spans, sp)
			want[[2]uint64{n, s}]++
		}
	}
	require.NoError(t, b.Ingest(ctx, auditRequest(t, spans...)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(300 * time.Millisecond)
	require.NoError(t, b.Sync(ctx))
	// Late spans, some traces decided, some (the next ones) not.
	for round := 0; round < 5; round++ {
		spans = spans[:0]
		for n := uint64(1); n <= 40; n += 3 {
			s := uint64(100 + round)
			spans = append(spans, auditSpan{trace: n, span: s, parent: 1})
			want[[2]uint64{n, s}]++
		}
		require.NoError(t, b.Ingest(ctx, auditRequest(t, spans...)))
		clk.Advance(400 * time.Millisecond)
		require.NoError(t, b.Sync(ctx))
	}
	clk.Advance(5 * time.Second)
	require.NoError(t, b.Sync(ctx))
	out.mu.Lock()
	defer out.mu.Unlock()
	got := map[[2]uint64]int{}
	bad := 0
	for _, r := range out.reqs {
		traces := map[uint64]bool{}
		for _, s := range r {
			got[s]++
			traces[s[0]] = true
		}
		if len(r) > 5 && len(traces) > 1 {
			bad++
			t.Errorf("request of %d spans over %d traces", len(r), len(traces))
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("span %v emitted %d times, want %d", k, got[k], v)
		}
	}
	for k := range got {
		if want[k] == 0 {
			t.Errorf("unexpected span %v", k)
		}
	}
	t.Logf("%d requests, %d oversize mixed", len(out.reqs), bad)
}

// auditAnnLog records each span's tracestate and SampleRate.
type auditAnnLog struct {
	mu    sync.Mutex
	state map[uint64]string
	rate  map[uint64]int64
}

func (l *auditAnnLog) emit(_ context.Context, td ptrace.Traces) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				n := binary.BigEndian.Uint64(id[:])
				l.state[n] = sp.TraceState().AsRaw()
				if v, ok := sp.Attributes().Get("SampleRate"); ok {
					l.rate[n] = v.Int()
				}
			}
		}
	}
	return nil
}

// TestCoreAnnotateRescueSampleRate: a trace dropped at quiet and rescued
// from rescue.window by a late ERROR span goes out as a supplement (th
// removed: adjusted count 0, docs/policies/counts.md), yet annotate_spans
// gives its spans SampleRate=1, so a backend summing SampleRate counts it.
func TestCoreAnnotateRescueSampleRate(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Rescue = RescueConfig{Window: time.Minute, MaxBytes: 1 << 20}
	cfg.Output.AnnotateSpans = true
	cfg.Policies = append(cfg.Policies,
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 10}))
	out := &auditAnnLog{state: map[uint64]string{}, rate: map[uint64]int64{}}
	b, clk := startBuffer(t, cfg, out.emit, nil)
	require.NoError(t, b.Ingest(ctx, auditRequest(t, auditSpan{trace: 1, span: 1}, auditSpan{trace: 1, span: 2, parent: 1})))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // dropped, held
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, b.Ingest(ctx, auditRequest(t, auditSpan{trace: 1, span: 3, parent: 1, status: ptrace.StatusCodeError})))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, b.Ingest(ctx, auditRequest(t, auditSpan{trace: 1, span: 4, parent: 1}))) // late span of the rescue
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("tracestates %v SampleRates %v", out.state, out.rate)
	for n, st := range out.state {
		if sampling.AdjustedCount(st) == 0 && out.rate[n] != 0 {
			t.Errorf("span %d adjusted count 0 (%q) but SampleRate=%d", n, st, out.rate[n])
		}
	}
}

// failingLog fails its first call retryably, its second permanently, then
// takes every request.
type failingLog struct {
	auditReqLog
	calls int
}

func (l *failingLog) emit(ctx context.Context, td ptrace.Traces) error {
	l.mu.Lock()
	l.calls++
	c := l.calls
	l.mu.Unlock()
	switch c {
	case 1:
		return errors.New("retry me")
	case 2:
		return consumererror.NewPermanent(errors.New("no"))
	}
	return l.auditReqLog.emit(ctx, td)
}

// TestCoreOutputPartialFailure: four kept traces of 2 spans, batch_max_spans
// 2: a retryable error is retried without duplicates, a permanent one loses
// only its request, and the others go out.
func TestCoreOutputPartialFailure(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.BatchMaxSpans = 2
	out := &failingLog{}
	b, clk := startBuffer(t, cfg, out.emit, nil)
	var spans []auditSpan
	for n := uint64(1); n <= 4; n++ {
		spans = append(spans, auditSpan{trace: n, span: 1, status: ptrace.StatusCodeError}, auditSpan{trace: n, span: 2, parent: 1})
	}
	require.NoError(t, b.Ingest(ctx, auditRequest(t, spans...)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second)
	require.NoError(t, b.Sync(ctx))
	out.mu.Lock()
	defer out.mu.Unlock()
	got := map[[2]uint64]int{}
	for _, r := range out.reqs {
		for _, s := range r {
			got[s]++
		}
	}
	require.Len(t, got, 6, "every kept span but the two of the request refused permanently: %v", out.reqs)
	for k, n := range got {
		require.Equal(t, 1, n, "span %v sent once", k)
	}
}

// TestCoreAnnotateUpstreamThreshold: a trace sampled upstream at 50 %
// (ot=th:8 on its spans) and kept here by the errors policy: its th and
// SampleRate agree (checked: both say 2; no defect).
func TestCoreAnnotateUpstreamThreshold(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Output.AnnotateSpans = true
	out := &auditAnnLog{state: map[uint64]string{}, rate: map[uint64]int64{}}
	b, clk := startBuffer(t, cfg, out.emit, nil)
	require.NoError(t, b.Ingest(ctx, encodeSpans(t,
		spanSpec{trace: 1, span: 1, service: "s", tracestate: "ot=th:8", status: ptrace.StatusCodeError},
		spanSpec{trace: 1, span: 2, parent: 1, service: "s", tracestate: "ot=th:8"})))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second)
	require.NoError(t, b.Sync(ctx))
	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("tracestates %v SampleRates %v", out.state, out.rate)
	for n, st := range out.state {
		if ac := sampling.AdjustedCount(st); int64(ac+0.5) != out.rate[n] {
			t.Errorf("span %d adjusted count %v (%q) but SampleRate=%d", n, ac, st, out.rate[n])
		}
	}
}
