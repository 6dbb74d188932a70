package otlpguardreceiver

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailsift/tailsift/internal/otlpguard"
	"github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"
	"github.com/tailsift/tailsift/receiver/otlpguardreceiver/internal/metadata"
)

// running is a started receiver for all three signals with its sinks.
type running struct {
	grpcAddr, httpAddr string
	traces             *consumertest.TracesSink
	metrics            *consumertest.MetricsSink
	logs               *consumertest.LogsSink
}

func startReceiver(t *testing.T, edit func(*otlpreceiver.Config)) *running {
	t.Helper()
	r := &running{
		grpcAddr: freeAddr(t), httpAddr: freeAddr(t),
		traces: new(consumertest.TracesSink), metrics: new(consumertest.MetricsSink), logs: new(consumertest.LogsSink),
	}
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = r.grpcAddr
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = r.httpAddr
	if edit != nil {
		edit(cfg)
	}
	set := receivertest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	tr, err := f.CreateTraces(ctx, set, cfg, r.traces)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(ctx, set, cfg, r.metrics)
	require.NoError(t, err)
	lr, err := f.CreateLogs(ctx, set, cfg, r.logs)
	require.NoError(t, err)
	for _, c := range []component.Component{tr, mr, lr} {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
		t.Cleanup(func() { assert.NoError(t, c.Shutdown(context.Background())) })
	}
	return r
}

func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// signalCase is one signal's paths, endpoints and sink count.
type signalCase struct {
	sig      otlpguard.Signal
	urlPath  string
	method   string
	deepPath otlpguardtest.Path
	normal   func(t *testing.T) []byte
	received func(r *running) int
}

var signalCases = []signalCase{
	{
		sig: otlpguard.Traces, urlPath: "/v1/traces", method: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		deepPath: otlpguardtest.TracesPaths[2],
		normal: func(t *testing.T) []byte {
			return marshal(t, ptraceotlp.NewExportRequestFromTraces(testdata.GenerateTraces(3)).MarshalProto)
		},
		received: func(r *running) int { return r.traces.SpanCount() },
	},
	{
		sig: otlpguard.Metrics, urlPath: "/v1/metrics", method: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
		deepPath: otlpguardtest.MetricsPaths[4], // a gauge exemplar
		normal: func(t *testing.T) []byte {
			return marshal(t, pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetrics(3)).MarshalProto)
		},
		received: func(r *running) int { return r.metrics.DataPointCount() },
	},
	{
		sig: otlpguard.Logs, urlPath: "/v1/logs", method: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
		deepPath: otlpguardtest.LogsPaths[2], // a log body
		normal: func(t *testing.T) []byte {
			return marshal(t, plogotlp.NewExportRequestFromLogs(testdata.GenerateLogs(3)).MarshalProto)
		},
		received: func(r *running) int { return r.logs.LogRecordCount() },
	},
}

func marshal(t *testing.T, f func() ([]byte, error)) []byte {
	t.Helper()
	b, err := f()
	require.NoError(t, err)
	return b
}

// compressors are the HTTP body encodings confighttp undoes before the
// guard reads the body.
var compressors = map[string]func(t *testing.T, b []byte) []byte{
	"":        func(_ *testing.T, b []byte) []byte { return b },
	"gzip":    streamed(func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }),
	"deflate": streamed(func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) }),
	"zstd": func(t *testing.T, b []byte) []byte {
		enc, err := zstd.NewWriter(nil)
		require.NoError(t, err)
		defer func() { require.NoError(t, enc.Close()) }()
		return enc.EncodeAll(b, nil)
	},
}

// streamed compresses with a writer from newWriter.
func streamed(newWriter func(io.Writer) io.WriteCloser) func(t *testing.T, b []byte) []byte {
	return func(t *testing.T, b []byte) []byte {
		var buf bytes.Buffer
		w := newWriter(&buf)
		_, err := w.Write(b)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return buf.Bytes()
	}
}

func post(t *testing.T, url, contentType, encoding string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	respBody, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, respBody
}

// TestGuardHTTP sends each signal's request over OTLP/HTTP with every body
// encoding: nested one level past the limit it is refused with 400 and an
// OTLP Status saying why; at the limit, and a normal request, go through.
func TestGuardHTTP(t *testing.T) {
	r := startReceiver(t, nil)
	for _, sc := range signalCases {
		url := "http://" + r.httpAddr + sc.urlPath
		for name, compress := range compressors {
			t.Run(sc.sig.String()+"/encoding="+name, func(t *testing.T) {
				over := otlpguardtest.Request(sc.deepPath, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth+1))
				code, body := post(t, url, pbContentType, name, compress(t, over))
				require.Equal(t, http.StatusBadRequest, code, "body: %q", body)
				var st status.Status
				require.NoError(t, proto.Unmarshal(body, &st))
				assert.Equal(t, int32(codes.InvalidArgument), st.Code)
				assert.Contains(t, st.Message, "nested deeper than the limit")

				before := sc.received(r)
				atLimit := otlpguardtest.Request(sc.deepPath, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth))
				code, body = post(t, url, pbContentType, name, compress(t, atLimit))
				require.Equal(t, http.StatusOK, code, "body: %q", body)
				code, body = post(t, url, pbContentType, name, compress(t, sc.normal(t)))
				require.Equal(t, http.StatusOK, code, "body: %q", body)
				assert.Greater(t, sc.received(r), before, "the accepted requests reached the consumer")
			})
		}
	}
}

// TestGuardHTTPJSON refuses an OTLP/JSON request nested past the bound with
// 400 and a JSON Status.
func TestGuardHTTPJSON(t *testing.T) {
	r := startReceiver(t, nil)
	deep := bytes.Repeat([]byte(`{"arrayValue":{"values":[`), otlpguard.MaxJSONNesting)
	body := append([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":`), deep...)
	code, resp := post(t, "http://"+r.httpAddr+"/v1/logs", "application/json; charset=utf-8", "", body)
	require.Equal(t, http.StatusBadRequest, code, "body: %q", resp)
	var st status.Status
	require.NoError(t, protojson.Unmarshal(resp, &st))
	assert.Contains(t, st.Message, "nested deeper than the limit")

	normal := marshal(t, plogotlp.NewExportRequestFromLogs(testdata.GenerateLogs(2)).MarshalJSON)
	code, resp = post(t, "http://"+r.httpAddr+"/v1/logs", "application/json", "", normal)
	require.Equal(t, http.StatusOK, code, "body: %q", resp)
	assert.Equal(t, 2, r.logs.LogRecordCount())
}

// TestGuardHTTPCustomPaths follows the receiver's configured URL paths.
func TestGuardHTTPCustomPaths(t *testing.T) {
	r := startReceiver(t, func(cfg *otlpreceiver.Config) {
		cfg.Protocols.HTTP.Get().TracesURLPath = "/custom/spans"
	})
	over := otlpguardtest.Request(otlpguardtest.TracesPaths[2], otlpguardtest.NestedAnyValue(otlpguard.MaxDepth+1))
	code, body := post(t, "http://"+r.httpAddr+"/custom/spans", pbContentType, "", over)
	assert.Equal(t, http.StatusBadRequest, code, "body: %q", body)
	code, _ = post(t, "http://"+r.httpAddr+"/v1/traces", pbContentType, "", over)
	assert.Equal(t, http.StatusNotFound, code, "the default path is not served")
}

// rawCodec sends and receives gRPC messages as bytes.
type rawCodec struct{}

func (rawCodec) Name() string                  { return "proto" }
func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}

// TestGuardGRPC sends each signal's request over OTLP/gRPC, plain and gzip:
// nested one level past the limit it is refused with InvalidArgument and a
// message (which also proves the codec recognises pdata's request types);
// at the limit and a normal request go through.
func TestGuardGRPC(t *testing.T) {
	r := startReceiver(t, nil)
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, conn.Close()) })

	for _, sc := range signalCases {
		for _, compressor := range []string{"", grpcgzip.Name} {
			t.Run(sc.sig.String()+"/compressor="+compressor, func(t *testing.T) {
				opts := []grpc.CallOption{grpc.ForceCodec(rawCodec{})}
				if compressor != "" {
					opts = append(opts, grpc.UseCompressor(compressor))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var reply []byte
				over := otlpguardtest.Request(sc.deepPath, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth+1))
				err := conn.Invoke(ctx, sc.method, over, &reply, opts...)
				st, ok := grpcstatus.FromError(err)
				require.True(t, ok, "not a status: %v", err)
				assert.Equal(t, codes.InvalidArgument, st.Code(), "status: %v", st)
				assert.Contains(t, st.Message(), "nested deeper than the limit")

				before := sc.received(r)
				atLimit := otlpguardtest.Request(sc.deepPath, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth))
				require.NoError(t, conn.Invoke(ctx, sc.method, atLimit, &reply, opts...))
				require.NoError(t, conn.Invoke(ctx, sc.method, sc.normal(t), &reply, opts...))
				assert.Greater(t, sc.received(r), before, "the accepted requests reached the consumer")
			})
		}
	}
}

// TestAddGuard puts the guard first, once, before middlewares the user
// configured, on both servers.
func TestAddGuard(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*otlpreceiver.Config)
	user := component.MustNewID("user_middleware")
	g := cfg.Protocols.GRPC.GetOrInsertDefault()
	g.Middlewares = append(g.Middlewares, configmiddleware.Config{ID: user})
	h := cfg.Protocols.HTTP.GetOrInsertDefault()
	addGuard(cfg)
	addGuard(cfg)
	require.Len(t, g.Middlewares, 2)
	assert.Equal(t, guardID, g.Middlewares[0].ID)
	assert.Equal(t, user, g.Middlewares[1].ID)
	require.Len(t, h.ServerConfig.Middlewares, 1)
	assert.Equal(t, guardID, h.ServerConfig.Middlewares[0].ID)
}

// TestRefusals carries a refusal from the codec to the interceptor once,
// bounds how many wait, and drops those no interceptor took after the TTL.
func TestRefusals(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	r := newRefusals(func() time.Time { return now })
	reqs := make([]*int, maxRefusals+1)
	for i := range reqs {
		reqs[i] = new(int)
	}
	_, ok := r.take(reqs[0])
	assert.False(t, ok, "nothing refused yet")

	for _, req := range reqs[:maxRefusals] {
		require.True(t, r.add(req, otlpguard.ErrTooDeep))
	}
	assert.False(t, r.add(reqs[maxRefusals], otlpguard.ErrTooDeep), "full")

	err, ok := r.take(reqs[0])
	require.True(t, ok)
	assert.ErrorIs(t, err, otlpguard.ErrTooDeep)
	_, ok = r.take(reqs[0])
	assert.False(t, ok, "taken once")
	assert.True(t, r.add(reqs[maxRefusals], otlpguard.ErrTooDeep), "room again")

	now = now.Add(refusalTTL + time.Second)
	assert.True(t, r.add(reqs[0], otlpguard.ErrTooDeep), "stale refusals were dropped")
	assert.Equal(t, int64(1), r.pending.Load())
}

// TestSignalOf leaves messages other than pdata's export requests (gRPC
// health checks, reflection) to the delegate codec unchecked.
func TestSignalOf(t *testing.T) {
	_, ok := signalOf(new(status.Status))
	assert.False(t, ok)
	_, ok = signalOf(nil)
	assert.False(t, ok)
}

// reportingHost records the status events it gets.
type reportingHost struct {
	component.Host
	events []*componentstatus.Event
}

func (h *reportingHost) Report(ev *componentstatus.Event) { h.events = append(h.events, ev) }

// TestGuardHostPassesThrough keeps the collector's extensions and status
// reporting visible to the upstream receiver next to the guard.
func TestGuardHostPassesThrough(t *testing.T) {
	ext := component.MustNewID("health_check")
	inner := &reportingHost{Host: hostWithExtensions{ext: nil}}
	h := &guardHost{host: inner, guard: newGuard(NewFactory().CreateDefaultConfig().(*otlpreceiver.Config), time.Now)}
	exts := h.GetExtensions()
	assert.Contains(t, exts, ext)
	assert.Same(t, h.guard, exts[guardID])
	assert.NotContains(t, inner.GetExtensions(), guardID, "the collector's map is not changed")

	ev := componentstatus.NewEvent(componentstatus.StatusOK)
	h.Report(ev)
	assert.Equal(t, []*componentstatus.Event{ev}, inner.events)
}

type hostWithExtensions map[component.ID]component.Component

func (h hostWithExtensions) GetExtensions() map[component.ID]component.Component { return h }

// TestZstdWindowClaimHTTP: nine bytes of zstd, a frame header naming a 512
// MiB window and an empty last block, made the upstream receiver's HTTP
// server (confighttp's decoder, which runs before any middleware) allocate
// 513 MiB per request. confighttp's zstd decoders now come bounded
// (internal/zstdlimit): the request is refused having allocated little, and
// zstd bodies still go through.
func TestZstdWindowClaimHTTP(t *testing.T) {
	r := startReceiver(t, nil)
	claim := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x98, 0x01, 0x00, 0x00}
	url := "http://" + r.httpAddr + "/v1/traces"
	for range 3 { // the first request and the pooled decoders after it
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code, body := post(t, url, pbContentType, "zstd", claim)
		runtime.ReadMemStats(&after)
		assert.Equal(t, http.StatusBadRequest, code, "body: %q", body)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated by the process for the request")
	}
	sc := signalCases[0]
	code, body := post(t, "http://"+r.httpAddr+sc.urlPath, pbContentType, "zstd", compressors["zstd"](t, sc.normal(t)))
	require.Equal(t, http.StatusOK, code, "body: %q", body)
}
