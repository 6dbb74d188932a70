package tailsiftreceiver

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

// stressBatch is trace n (3 spans, one error) with a distinct attribute
// of size pad, so that content can be checked.
func stressBatch(n uint64, pad int) ptrace.Traces {
	specs := errorTrace(n)
	big := make([]byte, pad)
	for i := range big {
		big[i] = byte('a' + (int(n)+i)%26)
	}
	for i := range specs {
		specs[i].Attrs = map[string]any{"req": fmt.Sprint(n), "pad": string(big)}
	}
	return batch(specs...)
}

// TestIngestPoisonOnDone hands the buffer requests whose done callback
// overwrites the bytes with garbage; the kept spans must be exactly those sent,
// and done must run exactly once per request.
func TestIngestPoisonOnDone(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	const N = 400
	var want []ptrace.Traces
	var calls atomic.Int64
	doneCount := make([]atomic.Int32, N)
	var wg sync.WaitGroup
	for i := range N {
		td := stressBatch(uint64(i+1), 100+i*7)
		want = append(want, td)
		b := marshal(t, td)
		wg.Go(func() {
			_, err := g.r.buf.IngestOwnedWithin(context.Background(), b, func() {
				doneCount[i].Add(1)
				calls.Add(1)
				for k := range b {
					b[k] = 0xAA
				}
			}, time.Second)
			if err != nil {
				t.Errorf("ingest %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	g.advance(time.Minute)
	g.advance(time.Minute)
	require.NoError(t, g.r.buf.Sync(context.Background()))
	for i := range N {
		if c := doneCount[i].Load(); c != 1 {
			t.Errorf("done of request %d called %d times", i, c)
		}
	}
	got := keptSet(g.sink.AllTraces())
	exp := keptSet(want)
	if len(got) != len(exp) {
		t.Errorf("kept %d spans, want %d", len(got), len(exp))
	} else {
		bad := auditDiff(t, got, exp)
		if bad > 0 {
			t.Errorf("%d kept spans differ from what was sent", bad)
		}
	}
	t.Logf("done calls %d for %d requests; kept %d spans", calls.Load(), N, len(got))
}

// TestIngestGRPCContent sends distinct requests concurrently over gRPC (some
// large enough to span several receive buffers, some gzip) and checks the
// kept spans are exactly those sent.
func TestIngestGRPCContent(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	const N = 300
	var want []ptrace.Traces
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range N {
		pad := 50 + (i%7)*9000
		if i%10 == 0 {
			pad = 200_000
		}
		td := stressBatch(uint64(i+1), pad)
		mu.Lock()
		want = append(want, td)
		mu.Unlock()
		b := marshal(t, td)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var opts []grpc.CallOption
			if i%3 == 0 {
				opts = append(opts, grpc.UseCompressor("gzip"))
			}
			resp, err := g.grpcExport(context.Background(), b, opts...)
			if err != nil || len(resp) != 0 {
				t.Errorf("export %d: %v %x", i, err, resp)
			}
		})
	}
	wg.Wait()
	g.advance(time.Minute)
	g.advance(time.Minute)
	got := keptSet(g.sink.AllTraces())
	exp := keptSet(want)
	if len(got) != len(exp) {
		t.Errorf("kept %d spans, want %d", len(got), len(exp))
		return
	}
	bad := auditDiff(t, got, exp)
	if bad > 0 {
		t.Errorf("%d of %d kept spans differ from what was sent", bad, len(got))
	}
	t.Logf("kept %d spans", len(got))
}

// TestIngestShutdownRace sends requests while Shutdown runs: every answer
// must be success or retryable UNAVAILABLE with RetryInfo.
func TestIngestShutdownRace(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var codesSeen sync.Map
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := marshal(t, stressBatch(uint64(w*100000+i+1), 100))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := g.grpcExport(ctx, b)
				cancel()
				st := status.Convert(err)
				key := st.Code().String()
				if st.Code() == codes.Unavailable {
					hasRI := false
					for _, d := range st.Details() {
						if _, ok := d.(*errdetails.RetryInfo); ok {
							hasRI = true
						}
					}
					key += fmt.Sprintf("/retryinfo=%v/%q", hasRI, truncate(st.Message(), 60))
				}
				codesSeen.Store(key, true)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- g.r.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown not bounded")
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	codesSeen.Range(func(k, _ any) bool { t.Logf("seen: %s", k); return true })
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// auditDiff counts spans whose identity, attributes (other than those the
// sampler adds) or service differ.
func auditDiff(t *testing.T, got, exp []keptSpan) int {
	bad := 0
	for k := range got {
		a, b := got[k], exp[k]
		a.ts, b.ts = "", ""
		if a.attrs != b.attrs {
			// sampler-added attributes
			if !containsAll(a.attrs, b.attrs) {
				if bad < 2 {
					t.Logf("diff: got %.200s\nwant %.200s", a.attrs, b.attrs)
				}
				bad++
				continue
			}
			a.attrs, b.attrs = "", ""
		}
		if a != b {
			bad++
		}
	}
	return bad
}

func containsAll(got, want string) bool {
	w := strings.Fields(strings.Trim(want, "[]"))
	for _, f := range w {
		if !strings.Contains(got, f) {
			return false
		}
	}
	return true
}

// TestIngestSharedLifecycle creates the receiver for a traces and a metrics
// pipeline through the factory, starts both, sends, and shuts down twice.
func TestIngestSharedLifecycle(t *testing.T) {
	f := NewFactory()
	cfg := testConfig()
	set := receivertest.NewNopSettings(metadata.Type)
	tsink := new(consumertest.TracesSink)
	msink := new(consumertest.MetricsSink)
	ctx := context.Background()
	tr, err := f.CreateTraces(ctx, set, cfg, tsink)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(ctx, set, cfg, msink)
	require.NoError(t, err)
	if tr != mr {
		t.Errorf("traces and metrics receivers are different instances")
	}
	host := componenttest.NewNopHost()
	require.NoError(t, tr.Start(ctx, host))
	require.NoError(t, mr.Start(ctx, host))
	r := tr.(*tailsiftReceiver)
	g := newClientRig(t, r)
	for i := range 20 {
		g.sendGRPC(stressBatch(uint64(i+1), 10))
	}
	require.NoError(t, tr.Shutdown(ctx))
	require.NoError(t, mr.Shutdown(ctx))
	t.Logf("kept spans %d, metric batches %d, datapoints %d", tsink.SpanCount(), len(msink.AllMetrics()), msink.DataPointCount())
	if tsink.SpanCount() != 60 {
		t.Errorf("kept %d spans at shutdown, want 60", tsink.SpanCount())
	}
	if msink.DataPointCount() == 0 {
		t.Errorf("no RED metrics flushed at shutdown")
	}
	// A new receiver can be created after shutdown (config reload with the same pointer).
	tr2, err := f.CreateTraces(ctx, set, cfg, tsink)
	require.NoError(t, err)
	if tr2 == tr {
		t.Errorf("shut-down receiver handed out again")
	}
	require.NoError(t, tr2.Start(ctx, host))
	require.NoError(t, tr2.Shutdown(ctx))
}

// TestIngestPartialSuccess checks exact rejected counts over gRPC and HTTP.
func TestIngestPartialSuccess(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	td := stressBatch(1, 10)
	// add invalid spans across both resources
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		ss := td.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
		a := ss.AppendEmpty()
		a.SetSpanID(spanID(9, uint64(i+1))) // no trace ID
		b := ss.AppendEmpty()
		b.SetTraceID(traceID(9)) // no span ID
	}
	body := marshal(t, td)
	resp, err := g.grpcExport(context.Background(), body)
	require.NoError(t, err)
	er := ptraceotlp.NewExportResponse()
	require.NoError(t, er.UnmarshalProto(resp))
	t.Logf("grpc rejected=%d msg=%q", er.PartialSuccess().RejectedSpans(), er.PartialSuccess().ErrorMessage())
	if er.PartialSuccess().RejectedSpans() != 4 {
		t.Errorf("grpc rejected %d, want 4", er.PartialSuccess().RejectedSpans())
	}
	hr, hb := g.httpExport(body, "application/x-protobuf")
	er2 := ptraceotlp.NewExportResponse()
	require.NoError(t, er2.UnmarshalProto(hb))
	t.Logf("http %d rejected=%d", hr.StatusCode, er2.PartialSuccess().RejectedSpans())
	if er2.PartialSuccess().RejectedSpans() != 4 {
		t.Errorf("http rejected %d, want 4", er2.PartialSuccess().RejectedSpans())
	}
	// all invalid
	td2 := ptrace.NewTraces()
	s := td2.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	s.AppendEmpty().SetSpanID(spanID(1, 1))
	_, err = g.grpcExport(context.Background(), marshal(t, td2))
	t.Logf("all invalid: %v", status.Code(err))
	g.advance(time.Minute)
	t.Logf("received metric: %d refused %d", g.metric("otelcol_receiver_accepted_spans"), g.metric("otelcol_receiver_refused_spans"))
}

// TestIngestPoisonLateAndRED is TestIngestPoisonOnDone with more policies that
// observe spans, RED on, max_spans early decisions, and late spans of kept
// traces (forwarded from the request bytes).
func TestIngestPoisonLateAndRED(t *testing.T) {
	cfg := testConfig()
	cfg.Completion.MaxSpans = 3
	cfg.Policies = append(cfg.Policies,
		sampling.NewPolicyConfig("anomalies", "adaptive", nil),
		sampling.NewPolicyConfig("attr", "string_attribute", &sampling.StringAttributeConfig{Key: "req", Values: []string{"^1.*"}, EnabledRegexMatching: true}),
	)
	g := newRig(t, cfg, nil)
	msink := new(consumertest.MetricsSink)
	g.r.enableRED(msink) // after Start: only Accepted/red paths, no flush loop
	var want []ptrace.Traces
	var calls atomic.Int64
	const N = 300
	send := func(td ptrace.Traces, i int) {
		b := marshal(t, td)
		_, err := g.r.buf.IngestOwnedWithin(context.Background(), b, func() {
			calls.Add(1)
			for k := range b {
				b[k] = byte(k * 31)
			}
		}, time.Second)
		if err != nil {
			t.Errorf("ingest %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	for i := range N {
		td := stressBatch(uint64(i+1), 50+i)
		want = append(want, td)
		wg.Go(func() { send(td, i) })
	}
	wg.Wait()
	g.advance(time.Minute)
	// late spans of kept traces
	for i := range N {
		specs := []spanSpec{{Trace: uint64(i + 1), Span: 7, Parent: 1, Attrs: map[string]any{"late": fmt.Sprint(i), "pad": strings.Repeat("z", i)}}}
		td := batch(specs...)
		want = append(want, td)
		wg.Go(func() { send(td, i) })
	}
	wg.Wait()
	g.advance(time.Minute)
	g.advance(time.Minute)
	got := keptSet(g.sink.AllTraces())
	exp := keptSet(want)
	if calls.Load() != 2*N {
		t.Errorf("done called %d times for %d requests", calls.Load(), 2*N)
	}
	if len(got) != len(exp) {
		t.Logf("DEFECT?: kept %d spans, want %d", len(got), len(exp))
		return
	}
	if bad := auditDiff(t, got, exp); bad > 0 {
		t.Errorf("%d kept spans differ", bad)
	}
	md := g.r.red.Flush(uint64(time.Now().UnixNano()))
	t.Logf("kept %d spans; RED datapoints %d", len(got), md.DataPointCount())
}

// ctxBlocking blocks until its context ends.
type ctxBlocking struct {
	consumertest.TracesSink
	entered chan struct{}
	once    sync.Once
}

func (b *ctxBlocking) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	b.once.Do(func() { close(b.entered) })
	<-ctx.Done()
	return ctx.Err()
}

// TestIngestShutdownStalledDone: requests queued behind a stalled shard;
// Shutdown is cut short by output.shutdown_timeout; every done must have
// run once, and gRPC calls in flight get retryable answers.
func TestIngestShutdownStalledDone(t *testing.T) {
	cfg := testConfig()
	next := &ctxBlocking{entered: make(chan struct{})}
	cfg.Shards = 1
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	cfg.Completion.MaxSpans = 1
	cfg.Output.BatchTimeout = 0
	cfg.Output.ShutdownTimeout = 500 * time.Millisecond
	env := tracebuftest.NewEnv(next)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = env.Tel.NewTelemetrySettings()
	r, err := newTestReceiver(set, cfg, next, env.Clock)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	r.queueWait.Store(int64(200 * time.Millisecond))
	g := newClientRig(t, r)
	g.sendGRPC(batch(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError}))
	<-next.entered
	var calls, accepted atomic.Int64
	for i := range 50 {
		b := marshal(t, stressBatch(uint64(i+10), 5000))
		_, err := r.buf.IngestOwnedWithin(context.Background(), b, func() { calls.Add(1) }, 10*time.Millisecond)
		if err == nil {
			accepted.Add(1)
		}
	}
	t.Logf("accepted %d, done so far %d", accepted.Load(), calls.Load())
	var wg sync.WaitGroup
	var codesSeen sync.Map
	for i := range 6 {
		wg.Go(func() {
			_, err := g.grpcExport(context.Background(), marshal(t, stressBatch(uint64(1000+i), 300000)))
			st := status.Convert(err)
			codesSeen.Store(st.Code().String()+" "+truncate(st.Message(), 50), true)
		})
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	err = r.Shutdown(context.Background())
	t.Logf("Shutdown took %v: %v", time.Since(start), err)
	wg.Wait()
	codesSeen.Range(func(k, _ any) bool { t.Logf("seen: %s", k); return true })
	if calls.Load() != 50 {
		t.Errorf("done ran %d times for 50 requests after Shutdown", calls.Load())
	}
	require.NoError(t, env.Tel.Shutdown(context.Background()))
}

// TestIngestClusterDecisionsOverload: a request carrying handed-over
// decisions reaching a gateway whose shard queue is full.
func TestIngestClusterDecisionsOverload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg := testConfig()
	next := tracebuftest.NewStalled(&cfg.bufferConfig)
	g0 := configgrpc.NewDefaultServerConfig()
	g0.NetAddr.Endpoint = addr
	cfg.Protocols.GRPC = configoptional.Some(g0)
	c := cluster.NewDefaultConfig()
	c.Self = addr
	c.Members.Static = []string{addr}
	c.Drain = 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	fitRequestsToQueue(cfg)
	g := newRig(t, cfg, next)
	defer close(next.Release)
	g.r.queueWait.Store(int64(100 * time.Millisecond))
	g.sendGRPC(batch(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError}))
	<-next.Entered
	// Fill the shard's queue.
	var refused error
	for i := 0; i < 5000 && refused == nil; i++ {
		b := marshal(t, batch(spanSpec{Trace: uint64(100 + i), Span: 1}))
		_, refused = g.r.buf.IngestOwnedWithin(context.Background(), b, nil, time.Millisecond)
	}
	require.Error(t, refused)
	t.Logf("queue full: %v", refused)
	// A plain request is retryable.
	_, err = g.grpcExport(context.Background(), marshal(t, batch(spanSpec{Trace: 9000, Span: 1})))
	t.Logf("plain request: %v", status.Code(err))
	// One with handed-over decisions.
	body := cluster.AppendControl(nil, &cluster.Control{Forwarded: true, Decisions: cluster.Decisions{Dropped: []uint64{12345}}})
	body = append(body, marshal(t, batch(spanSpec{Trace: 9001, Span: 1}))...)
	_, err = g.grpcExport(context.Background(), body)
	st := status.Convert(err)
	t.Logf("with decisions: %v %q", st.Code(), st.Message())
	if st.Code() != codes.Unavailable {
		t.Errorf("overload answered %v (not retryable) to a request with handed-over decisions", st.Code())
	}
	hr, hb := g.httpExport(body, "application/x-protobuf")
	t.Logf("http with decisions: %d retry-after=%q %q", hr.StatusCode, hr.Header.Get("Retry-After"), truncate(string(hb), 80))
}

// TestIngestLifecycleEdges: Shutdown without Start; Start failing on a
// busy port, then Shutdown twice; a request after Shutdown.
func TestIngestLifecycleEdges(t *testing.T) {
	ctx := context.Background()
	set := receivertest.NewNopSettings(metadata.Type)
	r, err := newTestReceiver(set, testConfig(), new(consumertest.TracesSink), clock.Real{})
	require.NoError(t, err)
	t.Logf("shutdown without start: %v", r.Shutdown(ctx))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	cfg := testConfig()
	h := cfg.Protocols.HTTP.Get()
	h.ServerConfig.NetAddr.Endpoint = ln.Addr().String()
	r2, err := newTestReceiver(set, cfg, new(consumertest.TracesSink), clock.Real{})
	require.NoError(t, err)
	r2.enableRED(new(consumertest.MetricsSink))
	err = r2.Start(ctx, componenttest.NewNopHost())
	t.Logf("start on busy port: %v", err)
	t.Logf("second start: %v", r2.Start(ctx, componenttest.NewNopHost()))
	t.Logf("shutdown 1: %v", r2.Shutdown(ctx))
	t.Logf("shutdown 2: %v", r2.Shutdown(ctx))
	_, err = r2.exportGRPC(ctx, marshal(t, stressBatch(1, 1)), nil)
	t.Logf("export after shutdown: %v", status.Code(err))
}
