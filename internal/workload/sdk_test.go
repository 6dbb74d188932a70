package workload

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// shapeStats sums what an OTLP server saw.
type shapeStats struct {
	mu                           sync.Mutex
	reqs, spans, bytes, resGroup int
	scopeGroups                  int
}

func (s *shapeStats) add(bytes, spans, res, scopes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs++
	s.bytes += bytes
	s.spans += spans
	s.resGroup += res
	s.scopeGroups += scopes
}

func (s *shapeStats) String() string {
	return fmt.Sprintf("%d requests, %.1f spans/request, %.0f bytes/request, %.1f bytes/span, %.2f resource groups/request, %.2f scope groups/request",
		s.reqs, float64(s.spans)/float64(s.reqs), float64(s.bytes)/float64(s.reqs), float64(s.bytes)/float64(s.spans),
		float64(s.resGroup)/float64(s.reqs), float64(s.scopeGroups)/float64(s.reqs))
}

type shapeServer struct {
	ptraceotlp.UnimplementedGRPCServer
	st *shapeStats
}

func (s *shapeServer) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	b, err := req.MarshalProto()
	if err != nil {
		return ptraceotlp.NewExportResponse(), err
	}
	rss := req.Traces().ResourceSpans()
	scopes := 0
	for i := range rss.Len() {
		scopes += rss.At(i).ScopeSpans().Len()
	}
	s.st.add(len(b), req.Traces().SpanCount(), rss.Len(), scopes)
	return ptraceotlp.NewExportResponse(), nil
}

// TestSDKShapeMatchesRealSDK replays the trace instances of a ShapeSDK run
// through the real OpenTelemetry Go SDK (BatchSpanProcessor with
// MaxExportBatchSize 512, otlptracegrpc without compression, one
// TracerProvider per service with the SDK's default resource) into an
// in-test OTLP gRPC server, and compares what that server saw with the
// requests the generator builds for the same traces: request size,
// spans/request and resource/scope groups per request must agree within 15 %.
//
// The replay runs in virtual time: spans end (and enter their service's
// batch) at their template end times, and every Linger of virtual time every
// service's batch is flushed (ForceFlush), as the BatchSpanProcessor's timer
// does every BatchTimeout. Linger is 1 s at 12 000 spans/s, which gives the
// same spans per batch as the SDK's 5 s at 2 400 spans/s.
func TestSDKShapeMatchesRealSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 36 000 spans through the OpenTelemetry SDK")
	}
	const linger = time.Second
	cfg := Config{Seed: 11, Rate: 12000, Templates: 300, Shape: ShapeSDK, Linger: linger}
	cfg.SetMix(Mix{Error: 2})
	_, st := generate(t, cfg, int64(3*cfg.Rate/16))
	var want shapeStats
	for _, r := range st.reqs {
		want.add(r.Size, r.Spans, len(r.blocks), len(r.blocks))
	}

	got := &shapeStats{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &shapeServer{st: got})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	ctx := context.Background()
	tps := map[uint8]*sdktrace.TracerProvider{}
	provider := func(svc uint8) *sdktrace.TracerProvider {
		if tp, ok := tps[svc]; ok {
			return tp
		}
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(lis.Addr().String()), otlptracegrpc.WithInsecure())
		require.NoError(t, err)
		res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", ServiceName(int(svc)))))
		require.NoError(t, err)
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp,
			sdktrace.WithBatchTimeout(time.Hour), sdktrace.WithMaxExportBatchSize(DefaultMaxSpan),
			sdktrace.WithMaxQueueSize(1<<20), sdktrace.WithBlocking()))
		tps[svc] = tp
		return tp
	}
	defer func() {
		for _, tp := range tps {
			assert.NoError(t, tp.Shutdown(ctx))
		}
	}()

	type end struct {
		at   int64
		inst *Instance
		span int
	}
	var ends []end
	for _, in := range st.insts {
		for i := range in.T.Spans {
			ends = append(ends, end{in.StartV + in.T.Patch[i].RelEnd, in, i})
		}
	}
	slices.SortStableFunc(ends, func(a, b end) int { return cmp.Compare(a.at, b.at) })
	const wall = int64(1_750_000_000_000_000_000)
	live := map[*Instance][]trace.Span{}
	nextTick := int64(linger)
	flush := func() {
		for _, tp := range tps {
			require.NoError(t, tp.ForceFlush(ctx))
		}
	}
	for _, e := range ends {
		for e.at >= nextTick {
			flush()
			nextTick += int64(linger)
		}
		spans, ok := live[e.inst]
		if !ok {
			spans = startSDKTrace(e.inst, wall, provider)
			live[e.inst] = spans
		}
		spans[e.span].End(trace.WithTimestamp(time.Unix(0, wall+e.inst.StartV+e.inst.T.Patch[e.span].RelEnd)))
	}
	flush()
	require.Equal(t, st.spans, int64(got.spans), "spans the SDK sent")

	t.Logf("generator (--shape sdk): %s", &want)
	t.Logf("OpenTelemetry Go SDK:     %s", got)
	ratio := func(a, b float64) float64 { return a / b }
	assert.InDelta(t, 1, ratio(float64(got.reqs), float64(want.reqs)), 0.15, "requests")
	assert.InDelta(t, 1, ratio(float64(got.bytes)/float64(got.reqs), float64(want.bytes)/float64(want.reqs)), 0.15, "bytes/request")
	assert.InDelta(t, 1, ratio(float64(got.bytes)/float64(got.spans), float64(want.bytes)/float64(want.spans)), 0.15, "bytes/span")
	assert.InDelta(t, 1, ratio(float64(got.spans)/float64(got.reqs), float64(want.spans)/float64(want.reqs)), 0.15, "spans/request")
	assert.Equal(t, got.reqs, got.resGroup, "the SDK sends one ResourceSpans per request")
	assert.Equal(t, want.reqs, want.resGroup, "--shape sdk sends one ResourceSpans per request")
	assert.Equal(t, got.scopeGroups, got.resGroup)
}

// startSDKTrace starts every span of in's trace in the real SDK, parents
// first, with the attributes, kinds and status ShapeSDK encodes.
func startSDKTrace(in *Instance, wall int64, provider func(uint8) *sdktrace.TracerProvider) []trace.Span {
	t := in.T
	spans := make([]trace.Span, len(t.Spans))
	order := make([]int, len(t.Spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(t.Spans[a].Depth, t.Spans[b].Depth) })
	for _, i := range order {
		s := t.Spans[i]
		ctx := context.Background()
		kind := trace.SpanKindInternal
		if s.Parent < 0 {
			kind = trace.SpanKindServer
		} else {
			ctx = trace.ContextWithSpan(ctx, spans[s.Parent])
			if t.Spans[s.Parent].Service != s.Service {
				kind = trace.SpanKindServer
			}
		}
		method := methods[(int(s.Service)*7+int(s.Op))%len(methods)]
		route := fmt.Sprintf("/v1/%s/op-%02d", ServiceName(int(s.Service)), s.Op)
		name := method + " " + route
		if kind == trace.SpanKindInternal {
			name = fmt.Sprintf("op-%02d.process", s.Op)
		}
		_, sp := provider(s.Service).Tracer(sdkScopeName).Start(ctx, name,
			trace.WithSpanKind(kind),
			trace.WithTimestamp(time.Unix(0, wall+in.StartV+t.Patch[i].RelStart)),
			trace.WithAttributes(
				attribute.String(AttrClass, t.Class),
				attribute.Int64(AttrSeq, in.Seq),
				attribute.String("http.request.method", method),
				attribute.String("http.route", route)))
		if s.Error {
			sp.SetStatus(codes.Error, "upstream: connection reset by peer")
		}
		spans[i] = sp
	}
	return spans
}
