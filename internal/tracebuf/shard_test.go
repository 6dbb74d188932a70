package tracebuf

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

// spanSpec is one span for encodeSpans.
type spanSpec struct {
	trace      uint64
	span       uint64
	parent     uint64 // 0: a root
	service    string
	tracestate string
	status     ptrace.StatusCode
	start, end uint64
	pad        int // bytes of a "pad" attribute
}

func spanID(n uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

// encodeSpans builds a request with each span under a ResourceSpans and
// ScopeSpans of its own, its resource named after its service.
func encodeSpans(t testing.TB, specs ...spanSpec) []byte {
	td := ptrace.NewTraces()
	for _, sp := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", sp.service)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(tid(sp.trace))
		s.SetSpanID(spanID(sp.span))
		if sp.parent != 0 {
			s.SetParentSpanID(spanID(sp.parent))
		}
		s.Status().SetCode(sp.status)
		s.TraceState().FromRaw(sp.tracestate)
		s.SetStartTimestamp(pcommon.Timestamp(sp.start))
		s.SetEndTimestamp(pcommon.Timestamp(sp.end))
		if sp.pad > 0 {
			s.Attributes().PutStr("pad", string(make([]byte, sp.pad)))
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// startBuffer starts a buffer on a fake clock at the Unix epoch, shut down
// when the test ends.
func startBuffer(t testing.TB, cfg Config, emit Emit, obs Observer) (*Buffer, *clocktest.Fake) {
	t.Helper()
	clk := clocktest.NewFake(time.Unix(0, 0))
	b, err := New(cfg, emit, Settings{Clock: clk, Observer: obs})
	require.NoError(t, err)
	b.Start()
	t.Cleanup(func() { require.NoError(t, b.Shutdown(context.Background())) })
	return b, clk
}

// A root that reaches a held trace brings its identity, as it does for a
// buffered trace: its tracestate's rv decides the trace again. (Rescue once
// added spans without noting the root, so the trace ID's randomness stayed.)
func TestRescuedRootBringsItsIdentity(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Rescue = RescueConfig{Window: time.Minute, MaxBytes: 1 << 20}
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 1}),
	}
	out := &collector{spans: map[[16]byte]int{}}
	b, clk := startBuffer(t, cfg, out.emit, nil)

	// Trace 1's ID has almost no randomness: 1 % drops it.
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: 1, span: 2, parent: 1, start: 10, end: 20})))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Completion.MaxWait) // decided without its root, dropped, held
	require.NoError(t, b.Sync(ctx))
	require.Zero(t, out.count(tid(1)))

	// The root lengthens the trace and carries the largest rv: 1 % keeps it.
	root := spanSpec{trace: 1, span: 1, tracestate: "ot=rv:ffffffffffffff", start: 0, end: 100}
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, root)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Output.BatchTimeout)
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, 2, out.count(tid(1)), "the rescued trace leaves whole")
}

// outSpan is one span as the buffer handed it on.
type outSpan struct {
	trace      [16]byte
	span       pcommon.SpanID
	service    string
	tracestate string
}

// spanLog records every span the buffer hands on, in order.
type spanLog struct {
	mu    sync.Mutex
	spans []outSpan
}

func (l *spanLog) emit(_ context.Context, td ptrace.Traces) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				l.spans = append(l.spans, outSpan{sp.TraceID(), sp.SpanID(), svc.Str(), sp.TraceState().AsRaw()})
			}
		}
	}
	return nil
}

func (l *spanLog) snapshot() []outSpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]outSpan(nil), l.spans...)
}

// lateRequest builds a request of n late spans of traces 1 and 2, each under
// a resource and scope of its own, after two spans of trace 3 that max_spans
// decides within the message (so its second span is late too, found after
// the others).
func lateRequest(t testing.TB, n int) []byte {
	specs := []spanSpec{
		{trace: 3, span: 1, service: "first", status: ptrace.StatusCodeError},
		{trace: 3, span: 2, parent: 1, service: "second"},
	}
	for k := range uint64(n) {
		specs = append(specs, spanSpec{trace: 1 + k%2, span: 10 + k, parent: 1, service: fmt.Sprint("svc-", k)})
	}
	return encodeSpans(t, specs...)
}

// Late spans leave under the scope they arrived with, in the order they
// arrived, each marked with its trace's threshold, however many scopes the
// request has. (forwardLate once walked every scope for every late span: a
// request of 120k scopes and late spans stalled its shard for minutes.)
func TestLateSpansOfManyScopes(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig() // max_spans 1: an error root is kept at once
	cfg.Output.BatchMaxSpans = 1 << 20
	out := &spanLog{}
	b, _ := startBuffer(t, cfg, out.emit, nil)

	require.NoError(t, b.Ingest(ctx, encodeSpans(t,
		spanSpec{trace: 1, span: 1, status: ptrace.StatusCodeError},
		spanSpec{trace: 2, span: 1, status: ptrace.StatusCodeError})))
	require.NoError(t, b.Sync(ctx))
	const n = 20000
	require.NoError(t, b.Ingest(ctx, lateRequest(t, n)))
	require.NoError(t, b.Sync(ctx))

	got := out.snapshot()
	require.Len(t, got, 2+2+n)
	// Traces 1 and 2 (kept before), then trace 3's root (kept now), then
	// the late spans by scope: trace 3's second span, then the others.
	want := []outSpan{
		{tid(1), spanID(1), "", "ot=th:0"},
		{tid(2), spanID(1), "", "ot=th:0"},
		{tid(3), spanID(1), "first", "ot=th:0"},
		{tid(3), spanID(2), "second", "ot=th:0"},
	}
	for k := range uint64(n) {
		want = append(want, outSpan{tid(1 + k%2), spanID(10 + k), fmt.Sprint("svc-", k), "ot=th:0"})
	}
	assert.Equal(t, want, got)
}

// BenchmarkForwardLate takes in requests of late spans, each under a scope
// of its own; the cost per span stays flat as the scopes grow.
//
//	go test -run '^$' -bench ForwardLate -count 6 ./internal/tracebuf | benchstat -col /scopes -
func BenchmarkForwardLate(b *testing.B) {
	for _, n := range []int{1000, 10000, 40000} {
		b.Run(fmt.Sprint("scopes=", n), func(b *testing.B) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Output.BatchTimeout = 0
			buf, _ := startBuffer(b, cfg, func(context.Context, ptrace.Traces) error { return nil }, nil)
			require.NoError(b, buf.Ingest(ctx, encodeSpans(b,
				spanSpec{trace: 1, span: 1, status: ptrace.StatusCodeError},
				spanSpec{trace: 2, span: 1, status: ptrace.StatusCodeError},
				spanSpec{trace: 3, span: 1, status: ptrace.StatusCodeError})))
			req := lateRequest(b, n)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				require.NoError(b, buf.Ingest(ctx, req))
				require.NoError(b, buf.Sync(ctx))
			}
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// dedupObserver counts the spans left out as duplicates.
type dedupObserver struct {
	NopObserver
	mu    sync.Mutex
	dedup int
}

func (o *dedupObserver) Deduplicated(spans int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dedup += spans
}

// Only true duplicates leave a kept trace: the same span ID and bytes under
// the same resource and scope. (The shard once removed every repeated span
// ID in the trace, so the server half of a B3/Zipkin shared span was lost.)
func TestDeduplicatesOnlyRetries(t *testing.T) {
	root := spanSpec{trace: 1, span: 1, service: "client", status: ptrace.StatusCodeError, start: 0, end: 100}
	shared := spanSpec{trace: 1, span: 5, parent: 1, service: "client", start: 10, end: 90}
	server := shared
	server.service = "server"
	changed := shared
	changed.end = 80
	later := shared
	later.end = 70
	for _, tc := range []struct {
		name      string
		requests  [][]spanSpec
		wantSpans []string // service of each span 5 handed on
		wantDedup int
	}{
		{"shared span of client and server", [][]spanSpec{{root, shared}, {server}}, []string{"client", "server"}, 0},
		{"client retry", [][]spanSpec{{root, shared}, {shared}}, []string{"client"}, 1},
		{"retry within one request", [][]spanSpec{{root, shared, shared}}, []string{"client"}, 1},
		{"same ID, other content", [][]spanSpec{{root, shared}, {changed}}, []string{"client", "client"}, 0},
		// A client that gives two spans one ID, then retries the second:
		// the retry was compared with the first span of the ID only, and
		// went out twice.
		{"retry of the second span with an ID", [][]spanSpec{{root, shared, changed}, {changed}}, []string{"client", "client"}, 1},
		{"retries of both spans with an ID", [][]spanSpec{{root, shared}, {changed}, {changed, shared}}, []string{"client", "client"}, 2},
		{"three spans with an ID, the third retried", [][]spanSpec{{root, shared, changed, later}, {later}}, []string{"client", "client", "client"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 100
			out := &spanLog{}
			obs := &dedupObserver{}
			b, clk := startBuffer(t, cfg, out.emit, obs)
			for _, req := range tc.requests {
				require.NoError(t, b.Ingest(ctx, encodeSpans(t, req...)))
			}
			require.NoError(t, b.Sync(ctx))
			clk.Advance(cfg.Completion.Quiet)
			require.NoError(t, b.Sync(ctx))
			var got []string
			for _, sp := range out.snapshot() {
				if sp.span == spanID(5) {
					got = append(got, sp.service)
				}
			}
			assert.Equal(t, tc.wantSpans, got)
			obs.mu.Lock()
			defer obs.mu.Unlock()
			assert.Equal(t, tc.wantDedup, obs.dedup)
		})
	}
}

// decisionLog records the buffer's decisions and dropped late spans.
type decisionLog struct {
	NopObserver
	mu          sync.Mutex
	decisions   []string // reason/keep or reason/drop
	lateDropped int
}

func (o *decisionLog) Decided(_ string, keep bool, _ int, reason string, _, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := "drop"
	if keep {
		d = "keep"
	}
	o.decisions = append(o.decisions, reason+"/"+d)
}

func (o *decisionLog) Late(kept bool, spans int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !kept {
		o.lateDropped += spans
	}
}

// A trace past completion.max_trace_bytes is decided at once, on what has
// arrived, and its later spans follow; the older traces of its shard stay
// buffered. (Without the cap, the giant trace filled the shard's budget and
// every older trace was decided early for memory.)
func TestMaxTraceBytes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      ptrace.StatusCode
		wantOut     int    // spans of the giant trace handed on
		wantDecided string // its decision
		lateDropped int
	}{
		{"an error trace is kept whole", ptrace.StatusCodeError, 1 + 130, ReasonMaxBytes + "/keep", 0},
		{"another trace is dropped with its later spans", ptrace.StatusCodeUnset, 0, ReasonMaxBytes + "/drop", 130 - 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 100000
			cfg.Completion.MaxTraceBytes = 256 << 10
			cfg.Buffer.MaxBytes = 2 << 20
			out := &spanLog{}
			obs := &decisionLog{}
			b, clk := startBuffer(t, cfg, out.emit, obs)

			// Ten older traces, waiting for their roots.
			for n := range uint64(10) {
				require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: 1 + n, span: 2, parent: 1})))
			}
			// Trace 100: a root, then 130 spans of 16 KiB in requests of
			// 10; the 16th crosses 256 KiB.
			require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: 100, span: 1, status: tc.status})))
			for r := range uint64(13) {
				var specs []spanSpec
				for k := range uint64(10) {
					specs = append(specs, spanSpec{trace: 100, span: 2 + r*10 + k, parent: 1, pad: 16 << 10})
				}
				require.NoError(t, b.Ingest(ctx, encodeSpans(t, specs...)))
			}
			require.NoError(t, b.Sync(ctx))
			clk.Advance(cfg.Output.BatchTimeout)
			require.NoError(t, b.Sync(ctx))

			n := 0
			for _, sp := range out.snapshot() {
				if sp.trace == tid(100) {
					n++
				}
			}
			assert.Equal(t, tc.wantOut, n)
			obs.mu.Lock()
			defer obs.mu.Unlock()
			assert.Equal(t, []string{tc.wantDecided}, obs.decisions, "the older traces stay buffered")
			assert.Equal(t, tc.lateDropped, obs.lateDropped)
		})
	}
}

func TestMaxTraceBytesConfig(t *testing.T) {
	cfg := DefaultConfig()
	assert.Equal(t, ByteSize(16<<20), cfg.Completion.MaxTraceBytes)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"completion": map[string]any{"max_trace_bytes": "4MiB"},
	}).Unmarshal(&cfg))
	require.NoError(t, confmap.Validate(&cfg))
	assert.Equal(t, ByteSize(4<<20), cfg.Completion.MaxTraceBytes)

	cfg.Completion.MaxTraceBytes = -1
	require.EqualError(t, confmap.Validate(&cfg),
		"completion: max_trace_bytes: must not be negative (0 turns it off), got -1")

	// A shard applies at most half its share of buffer.max_bytes.
	cfg.Completion.MaxTraceBytes = 1 << 30
	cfg.Buffer.MaxBytes = 64 << 20
	maxBytes := func(cfg Config) uint64 {
		e, err := sampling.NewEngine(cfg.Policies)
		require.NoError(t, err)
		s := newShard(shardDeps{engine: e}, shardConfigFor(cfg, 4), 0)
		defer s.usage.arena.close()
		return s.due.maxBytes
	}
	assert.Equal(t, uint64(8<<20), maxBytes(cfg))
	cfg.Completion.MaxTraceBytes = 0
	assert.Equal(t, uint64(math.MaxUint64), maxBytes(cfg), "off")
}

// Late spans of a trace kept on a salted randomness (probabilistic with
// hash_salt) carry the rv and th the rest of the trace left with, from the
// kept cache. (The kept caches
// once stored only th, and late spans left with th alone: downstream then
// read the trace ID's randomness, not the one the trace was kept on.)
func TestLateSpansKeepTheirSaltedRV(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()                 // max_spans 1: each trace is decided at once
	cfg.DecisionCache.KeptMaxBytes = 16 << 10 // a small kept cache
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("salted", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 50, HashSalt: "s"}),
	}
	out := &spanLog{}
	b, clk := startBuffer(t, cfg, out.emit, nil)

	const n = 400
	var first, late []spanSpec
	for k := range uint64(n) {
		first = append(first, spanSpec{trace: 100 + k, span: 1})
		late = append(late, spanSpec{trace: 100 + k, span: 2, parent: 1, tracestate: "vendor=x"})
	}
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, first...)))
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, b.Ingest(ctx, encodeSpans(t, late...)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(cfg.Output.BatchTimeout)
	require.NoError(t, b.Sync(ctx))

	kept := map[[16]byte]string{} // trace → the tracestate of its first span
	lateSeen := 0
	for _, sp := range out.snapshot() {
		if sp.span == spanID(1) {
			require.Contains(t, sp.tracestate, "rv:", "a salted decision writes its rv")
			kept[sp.trace] = sp.tracestate
			continue
		}
		lateSeen++
		want, ok := kept[sp.trace]
		require.True(t, ok, "late span of a trace that was not kept")
		assert.Equal(t, want+",vendor=x", sp.tracestate, "late span of trace %x", sp.trace)
	}
	require.Greater(t, len(kept), n/4, "the salt keeps about half")
	assert.Greater(t, lateSeen, len(kept)/2, "late spans of the kept traces were forwarded")
}
