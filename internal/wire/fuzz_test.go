package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// ---------------------------------------------------------------------------
// Real OpenTelemetry Go SDK output.
//
// Spans are made by an SDK TracerProvider and converted to OTLP by the SDK's
// own OTLP exporter (otlptrace.New with an in-memory Client), whose transform
// is what otlptracegrpc and otlptracehttp put on the wire; the request is
// then encoded with proto.Marshal, as those clients do.

// memClient is an otlptrace.Client that keeps what it is asked to upload.
type memClient struct {
	mu  sync.Mutex
	rss []*tracepb.ResourceSpans
}

func (c *memClient) Start(context.Context) error { return nil }
func (c *memClient) Stop(context.Context) error  { return nil }
func (c *memClient) UploadTraces(_ context.Context, rss []*tracepb.ResourceSpans) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rss = append(c.rss, rss...)
	return nil
}

// seqIDs is a deterministic sdktrace.IDGenerator.
type seqIDs struct {
	mu sync.Mutex
	n  uint64
}

func (g *seqIDs) next() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return g.n*0x9e3779b97f4a7c15 | 1
}

func (g *seqIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	var t trace.TraceID
	binary.BigEndian.PutUint64(t[:8], g.next())
	binary.BigEndian.PutUint64(t[8:], g.next())
	return t, g.NewSpanID(context.Background(), t)
}

func (g *seqIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], g.next())
	return s
}

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) trace.SpanStartEventOption {
	return trace.WithTimestamp(epoch.Add(time.Duration(ms) * time.Millisecond))
}

// sdkSpans records spans of an instrumented-looking request with two
// services (two resources), several scopes, events, links, errors and an
// incoming tracestate carrying OpenTelemetry sampling values.
func sdkSpans(t testing.TB) []sdktrace.ReadOnlySpan {
	t.Helper()
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	ids := &seqIDs{}
	newTP := func(res *resource.Resource) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(
			sdktrace.WithSpanProcessor(rec),
			sdktrace.WithIDGenerator(ids),
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
		)
	}
	frontend := newTP(resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "frontend"),
		attribute.String("service.version", "1.4.2"),
		attribute.String("deployment.environment.name", "prod"),
		attribute.String("host.name", "fe-7d9f"),
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
		attribute.String("telemetry.sdk.version", "1.47.0"),
	))
	backend := newTP(resource.NewSchemaless(
		attribute.String("service.name", "cart"),
		attribute.Int("process.pid", 4242),
		attribute.StringSlice("process.command_args", []string{"/cart", "-v"}),
	))

	httpTracer := frontend.Tracer("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
		trace.WithInstrumentationVersion("0.60.0"),
		trace.WithSchemaURL("https://opentelemetry.io/schemas/1.20.0"),
		trace.WithInstrumentationAttributes(attribute.String("lib.kind", "http")))
	appTracer := frontend.Tracer("frontend/app")
	dbTracer := backend.Tracer("go.opentelemetry.io/contrib/instrumentation/database/sql", trace.WithInstrumentationVersion("0.1.0"))

	// An incoming request sampled at the head with ot=th:8 (50 %) and an explicit rv.
	ts, err := trace.ParseTraceState("ot=th:8;rv:9b8f1c0e4a2d6f,congo=t61rcWkgMzE")
	require.NoError(t, err)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
		Remote:     true,
	})
	rctx := trace.ContextWithRemoteSpanContext(ctx, remote)

	sctx, server := httpTracer.Start(rctx, "GET /cart/{id}", at(0), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", "GET"),
			attribute.String("url.path", "/cart/42"),
			attribute.String("url.scheme", "https"),
			attribute.String("server.address", "shop.example.com"),
			attribute.Int("server.port", 443),
			attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
			attribute.String("client.address", "10.1.2.3"),
			attribute.String("network.protocol.version", "1.1"),
		))
	actx, app := appTracer.Start(sctx, "loadCart", at(1))
	app.AddEvent("cache miss", trace.WithTimestamp(epoch.Add(2*time.Millisecond)),
		trace.WithAttributes(attribute.String("cache.key", "cart:42")))
	_, db := dbTracer.Start(actx, "SELECT carts", at(3), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.query.text", "SELECT * FROM carts WHERE id = $1"),
			attribute.Bool("db.prepared", true),
			attribute.Float64("db.cost", 3.5),
			attribute.Int64Slice("db.rows", []int64{1, 2, 3}),
		),
		trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("link.kind", "retry")}}))
	db.RecordError(errors.New("connection reset by peer"), trace.WithTimestamp(epoch.Add(40*time.Millisecond)))
	db.SetStatus(codes.Error, "connection reset by peer")
	db.End(trace.WithTimestamp(epoch.Add(41 * time.Millisecond)))
	app.SetStatus(codes.Ok, "")
	app.End(trace.WithTimestamp(epoch.Add(45 * time.Millisecond)))
	server.SetAttributes(attribute.Int("http.response.status_code", 500))
	server.SetStatus(codes.Error, "")
	server.End(trace.WithTimestamp(epoch.Add(50 * time.Millisecond)))

	// A separate root trace with no tracestate and nothing but a name.
	_, bg := appTracer.Start(ctx, "background tick", at(100), trace.WithNewRoot())
	bg.End(trace.WithTimestamp(epoch.Add(100 * time.Millisecond)))

	// A producer/consumer pair in a third trace.
	pctx, prod := appTracer.Start(ctx, "publish orders", at(200), trace.WithSpanKind(trace.SpanKindProducer))
	_, cons := dbTracer.Start(pctx, "process orders", at(210), trace.WithSpanKind(trace.SpanKindConsumer))
	cons.End(trace.WithTimestamp(epoch.Add(260 * time.Millisecond)))
	prod.End(trace.WithTimestamp(epoch.Add(205 * time.Millisecond)))

	for _, tp := range []*sdktrace.TracerProvider{frontend, backend} {
		require.NoError(t, tp.Shutdown(ctx))
	}
	spans := rec.Ended()
	require.Len(t, spans, 6)
	return spans
}

// sdkStubSpans are hand-written tracetest.SpanStubs: a span with every field
// the SDK knows, including dropped counts and the unsampled-child edge cases.
func sdkStubSpans() []sdktrace.ReadOnlySpan {
	ts, _ := trace.ParseTraceState("vendor=value,ot=th:c")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, TraceState: ts,
	})
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: sc.TraceID(), SpanID: trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1}, Remote: true,
	})
	stubs := tracetest.SpanStubs{
		{
			Name: "stub with everything", SpanContext: sc, Parent: parent, SpanKind: trace.SpanKindServer,
			StartTime: epoch, EndTime: epoch.Add(time.Second),
			Attributes:        []attribute.KeyValue{attribute.String("a", "b"), attribute.BoolSlice("bs", []bool{true, false})},
			Events:            []sdktrace.Event{{Name: "e", Time: epoch.Add(time.Millisecond), DroppedAttributeCount: 2}},
			Links:             []sdktrace.Link{{SpanContext: parent, DroppedAttributeCount: 1}},
			Status:            sdktrace.Status{Code: codes.Error, Description: "bad"},
			DroppedAttributes: 3, DroppedEvents: 4, DroppedLinks: 5, ChildSpanCount: 1,
			Resource:             resource.NewSchemaless(attribute.String("service.name", "stub")),
			InstrumentationScope: instrumentation.Scope{Name: "stub", Version: "v0", SchemaURL: "https://example.com/s"},
		},
		{
			Name: "", SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: sc.TraceID(), SpanID: trace.SpanID{9, 9, 9, 9, 9, 9, 9, 9},
			}),
			StartTime: epoch, EndTime: epoch, // zero duration, unsampled flags
			InstrumentationScope: instrumentation.Scope{Name: "stub"},
			Resource:             resource.NewSchemaless(attribute.String("service.name", "stub")),
		},
	}
	return stubs.Snapshots()
}

// exportOTLP converts SDK spans to OTLP with the SDK's OTLP exporter.
func exportOTLP(t testing.TB, spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	t.Helper()
	ctx := context.Background()
	c := &memClient{}
	exp, err := otlptrace.New(ctx, c)
	require.NoError(t, err)
	require.NoError(t, exp.ExportSpans(ctx, spans))
	require.NoError(t, exp.Shutdown(ctx))
	// The exporter groups by resource in a map; order the resources so
	// that the encoding is deterministic.
	key := func(rs *tracepb.ResourceSpans) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rs.Resource)
		require.NoError(t, err)
		return string(b)
	}
	slices.SortFunc(c.rss, func(a, b *tracepb.ResourceSpans) int { return strings.Compare(key(a), key(b)) })
	return c.rss
}

// sdkRequests are encoded ExportTraceServiceRequests from the SDK: all spans
// in one request, one request per span, and the stubs.
func sdkRequests(t testing.TB) map[string][]byte {
	t.Helper()
	enc := func(rss []*tracepb.ResourceSpans) []byte {
		buf, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rss})
		require.NoError(t, err)
		return buf
	}
	spans := sdkSpans(t)
	out := map[string][]byte{
		"sdk-batch": enc(exportOTLP(t, spans)),
		"sdk-stubs": enc(exportOTLP(t, sdkStubSpans())),
	}
	for i, s := range spans {
		out[fmt.Sprintf("sdk-span-%d", i)] = enc(exportOTLP(t, []sdktrace.ReadOnlySpan{s}))
	}
	// A TracesData carries the same field 1, so it encodes identically.
	td, err := proto.Marshal(&tracepb.TracesData{ResourceSpans: exportOTLP(t, spans)})
	require.NoError(t, err)
	require.Equal(t, out["sdk-batch"], td)
	return out
}

// TestScanOTelSDKExport checks Scan against the SDK exporter's own protobuf
// structures.
func TestScanOTelSDKExport(t *testing.T) {
	for _, spans := range [][]sdktrace.ReadOnlySpan{sdkSpans(t), sdkStubSpans()} {
		rss := exportOTLP(t, spans)
		buf, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rss})
		require.NoError(t, err)

		var b Batch
		require.NoError(t, Scan(buf, &b))
		i := 0
		for _, rs := range rss {
			res, err := proto.Marshal(rs.Resource)
			require.NoError(t, err)
			for _, ss := range rs.ScopeSpans {
				scope, err := proto.Marshal(ss.Scope)
				require.NoError(t, err)
				for _, sp := range ss.Spans {
					require.Less(t, i, len(b.Spans))
					got := b.Spans[i]
					i++
					require.Equal(t, sp.TraceId, got.TraceID[:])
					require.Equal(t, sp.SpanId, got.SpanID[:])
					require.Equal(t, len(sp.ParentSpanId) == 8, got.HasParent)
					require.Equal(t, uint8(sp.GetStatus().GetCode()), got.Status)
					require.Equal(t, sp.StartTimeUnixNano, got.Start)
					require.Equal(t, sp.EndTimeUnixNano, got.End)
					require.Equal(t, sp.Name, string(got.Name))
					require.Equal(t, sp.TraceState, string(got.TraceState))
					raw, err := proto.Marshal(sp)
					require.NoError(t, err)
					require.Equal(t, raw, got.Raw)
					sc := b.Scopes[got.Scope]
					require.Equal(t, res, sc.Resource)
					require.Equal(t, rs.SchemaUrl, string(sc.ResourceSchemaURL))
					require.Equal(t, scope, sc.Scope)
					require.Equal(t, ss.SchemaUrl, string(sc.ScopeSchemaURL))
				}
			}
		}
		require.Len(t, b.Spans, i)
		require.Positive(t, i)
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzScan from the SDK when
// TAILSIFT_WRITE_FUZZ_SEEDS=1; otherwise it checks the stored seeds are
// still what the SDK produces.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzScan")
	for name, buf := range sdkRequests(t) {
		file := filepath.Join(dir, name)
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(buf)) + ")\n"
		if os.Getenv("TAILSIFT_WRITE_FUZZ_SEEDS") == "1" {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(file, []byte(content), 0o644))
			continue
		}
		stored, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue // only a selection is stored
		}
		require.NoError(t, err)
		require.Equal(t, content, string(stored), "%s is stale: rerun with TAILSIFT_WRITE_FUZZ_SEEDS=1", file)
	}
}

// ---------------------------------------------------------------------------

// addScanSeeds adds the seeds of the traces-request fuzz targets: SDK
// output, the small fixtures, hand-made edge cases and the corpus stored
// for FuzzScan.
func addScanSeeds(f *testing.F) {
	for _, buf := range sdkRequests(f) {
		f.Add(buf)
	}
	for _, fx := range fixtures {
		// Big inputs slow mutation and minimization down; keep the small.
		if buf := marshal(f, fx.build()); len(buf) <= 4096 {
			f.Add(buf)
		}
	}
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	f.Add([]byte{})
	f.Add(inSpan(ids))
	f.Add(inSpan(ids, lenField(3, []byte("ot=th:8")), lenField(15, varintField(3, 2)), fixed64Field(7, 1), fixed64Field(8, 2)))
	f.Add(inSpan(lenField(1, tidb(1)[:15])))
	f.Add(inResource(lenField(2, nil), lenField(1, nil)))
	f.Add(varintField(1, 3))
	f.Add(nestedGroups(5, 3))
	f.Add(inSpan(ids, lenField(6, nil)))                // kind as bytes
	f.Add(attrWith(deepAnyValue(6)))                    // nested kvlist and array values
	f.Add(inResource(lenField(1000, lenField(2, ids)))) // instrumentation_library_spans
	f.Add(repeated(3))

	dir := filepath.Join("testdata", "fuzz", "FuzzScan")
	entries, err := os.ReadDir(dir)
	require.NoError(f, err)
	for _, e := range entries {
		content, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(f, err)
		lines := strings.Split(strings.TrimSpace(string(content)), "\n")
		require.Len(f, lines, 2, "%s: one []byte value", e.Name())
		quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
		require.True(f, ok, "%s: one []byte value", e.Name())
		buf, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		require.NoError(f, err, e.Name())
		f.Add([]byte(buf))
	}
}

func FuzzScan(f *testing.F) {
	addScanSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		err := Scan(data, &b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		for i, s := range b.Spans {
			if !within(s.Raw, data) {
				t.Fatalf("span %d: Raw does not lie inside the input", i)
			}
			if !within(s.Name, s.Raw) || !within(s.TraceState, s.Raw) {
				t.Fatalf("span %d: Name or TraceState outside Raw", i)
			}
			if s.Scope < 0 || int(s.Scope) >= len(b.Scopes) {
				t.Fatalf("span %d: scope %d of %d", i, s.Scope, len(b.Scopes))
			}
			if s.Status > StatusError {
				t.Fatalf("span %d: status %d", i, s.Status)
			}
			id, ts := PeekSpan(s.Raw)
			if id != s.SpanID || string(ts) != string(s.TraceState) {
				t.Fatalf("span %d: PeekSpan = %x %q, Scan = %x %q", i, id, ts, s.SpanID, s.TraceState)
			}
		}
		for i, sc := range b.Scopes {
			// Schema URLs alias the input. A resource or scope that occurs
			// more than once is merged into a fresh slice (protobuf merge
			// semantics); the round trip below checks those.
			for _, part := range [][]byte{sc.ResourceSchemaURL, sc.ScopeSchemaURL} {
				if !within(part, data) {
					t.Fatalf("scope %d: schema URL outside the input", i)
				}
			}
		}

		// Re-encode every span under its scope, with a replaced, removed
		// or kept tracestate, and scan the result again.
		ts := func(i int) string {
			switch i % 3 {
			case 0:
				return "ot=th:0"
			case 1:
				return ""
			}
			return string(b.Spans[i].TraceState)
		}
		out := groupByScope(&b, ts)
		var b2 Batch
		if err := Scan(out, &b2); err != nil {
			t.Fatalf("re-encoded batch does not scan: %v", err)
		}
		if len(b2.Spans) != len(b.Spans) {
			t.Fatalf("re-encoded batch has %d spans, want %d", len(b2.Spans), len(b.Spans))
		}
		// groupByScope orders spans by scope; map them back.
		order := make([]int, 0, len(b.Spans))
		for _, idx := range spansByScope(&b) {
			order = append(order, idx...)
		}
		for j, i := range order {
			s1, s2 := &b.Spans[i], &b2.Spans[j]
			if s1.TraceID != s2.TraceID || s1.SpanID != s2.SpanID || s1.HasParent != s2.HasParent ||
				s1.Status != s2.Status || s1.Start != s2.Start || s1.End != s2.End ||
				string(s1.Name) != string(s2.Name) || string(s2.TraceState) != ts(i) {
				t.Fatalf("span %d changed in re-encoding:\n got %+v\nwant %+v (tracestate %q)", i, *s2, *s1, ts(i))
			}
			f1, f2 := b.Scopes[s1.Scope], b2.Scopes[s2.Scope]
			if string(f1.Resource) != string(f2.Resource) || (f1.Resource == nil) != (f2.Resource == nil) ||
				string(f1.Scope) != string(f2.Scope) || (f1.Scope == nil) != (f2.Scope == nil) ||
				string(f1.ResourceSchemaURL) != string(f2.ResourceSchemaURL) ||
				string(f1.ScopeSchemaURL) != string(f2.ScopeSchemaURL) {
				t.Fatalf("span %d: framing changed in re-encoding", i)
			}
		}
	})
}
