package tailsiftreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/goleak"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

func TestKeepsTracesFromBothTransports(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	tr := errorTrace(1)
	// One trace, its spans over gRPC, HTTP protobuf and HTTP JSON.
	g.sendGRPC(batch(tr[0]))
	resp, body := g.httpExport(marshal(t, batch(tr[1])), pbContentType)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, pbContentType, resp.Header.Get("Content-Type"))
	assert.Empty(t, body)
	js, err := ptraceotlp.NewExportRequestFromTraces(batch(tr[2])).MarshalJSON()
	require.NoError(t, err)
	resp, body = g.httpExport(js, jsonContentType+"; charset=utf-8")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, jsonContentType, resp.Header.Get("Content-Type"))
	assert.JSONEq(t, `{}`, string(body))
	// A fast successful trace is dropped.
	g.sendGRPC(batch(spanSpec{Trace: 2, Span: 1}))

	g.advance(1900 * time.Millisecond)
	assert.Empty(t, g.spansOf(1), "decided before quiet elapsed")
	g.advance(100 * time.Millisecond)
	got := g.spansOf(1)
	require.Len(t, got, 3)
	for _, sp := range got {
		assert.Equal(t, "ot=th:0", sp.TraceState().AsRaw())
		v, _ := sp.Attributes().Get("http.route")
		assert.Equal(t, "/api/items/{id}", v.Str())
	}
	assert.Empty(t, g.spansOf(2))
	assert.Equal(t, 3, g.sink.SpanCount(), "only kept spans reach the next consumer")

	assert.Equal(t, int64(1), g.metric("otelcol_receiver_tailsift_traces_decided",
		attribute.String("policy", "errors"), attribute.String("decision", "keep")))
	assert.Equal(t, int64(1), g.metric("otelcol_receiver_tailsift_traces_decided", attribute.String("decision", "drop")))
	assert.Equal(t, int64(4), g.metric("otelcol_receiver_tailsift_spans_received"))
	assert.Equal(t, int64(2), g.metric("otelcol_receiver_accepted_spans", attribute.String("transport", "grpc")))
	assert.Equal(t, int64(2), g.metric("otelcol_receiver_accepted_spans", attribute.String("transport", "http")))
	assert.Equal(t, int64(0), g.metric("otelcol_receiver_refused_spans"))
}

func TestPartialSuccessForBadIDs(t *testing.T) {
	withBad := func(n uint64) ptrace.Traces {
		td := batch(errorTrace(n)...)
		ss := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		ss.AppendEmpty().SetSpanID(spanID(9, 9))  // all-zero trace ID
		ss.AppendEmpty().SetTraceID(traceID(999)) // no span ID
		return td
	}
	g := newRig(t, testConfig(), nil)

	t.Run("grpc", func(t *testing.T) {
		out, err := g.grpcExport(context.Background(), marshal(t, withBad(1)))
		require.NoError(t, err)
		resp := ptraceotlp.NewExportResponse()
		require.NoError(t, resp.UnmarshalProto(out))
		assert.Equal(t, int64(2), resp.PartialSuccess().RejectedSpans())
		assert.Contains(t, resp.PartialSuccess().ErrorMessage(), "rejected 2 of 5 spans")
	})
	t.Run("http protobuf", func(t *testing.T) {
		hr, body := g.httpExport(marshal(t, withBad(2)), pbContentType)
		require.Equal(t, http.StatusOK, hr.StatusCode)
		resp := ptraceotlp.NewExportResponse()
		require.NoError(t, resp.UnmarshalProto(body))
		assert.Equal(t, int64(2), resp.PartialSuccess().RejectedSpans())
		assert.Contains(t, resp.PartialSuccess().ErrorMessage(), "trace_id and span_id must be present")
	})
	t.Run("http json", func(t *testing.T) {
		js, err := ptraceotlp.NewExportRequestFromTraces(withBad(3)).MarshalJSON()
		require.NoError(t, err)
		hr, body := g.httpExport(js, jsonContentType)
		require.Equal(t, http.StatusOK, hr.StatusCode)
		resp := ptraceotlp.NewExportResponse()
		require.NoError(t, resp.UnmarshalJSON(body), string(body))
		assert.Equal(t, int64(2), resp.PartialSuccess().RejectedSpans())
	})
	g.advance(2 * time.Second)
	for n := uint64(1); n <= 3; n++ {
		assert.Len(t, g.spansOf(n), 3, "valid spans of trace %d must be buffered and kept", n)
	}
	assert.Equal(t, int64(6), g.metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "invalid")))
	assert.Equal(t, int64(9), g.metric("otelcol_receiver_accepted_spans"))
	assert.Equal(t, int64(6), g.metric("otelcol_receiver_refused_spans"))
}

func TestRequestDecompression(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	out, err := g.grpcExport(context.Background(), marshal(t, batch(errorTrace(1)...)), grpc.UseCompressor(grpcgzip.Name))
	require.NoError(t, err)
	assert.Empty(t, out)

	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, err = w.Write(marshal(t, batch(errorTrace(2)...)))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	resp, body := g.httpExport(gz.Bytes(), pbContentType, "Content-Encoding", "gzip")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	zs := enc.EncodeAll(marshal(t, batch(errorTrace(3)...)), nil)
	require.NoError(t, enc.Close())
	resp, body = g.httpExport(zs, pbContentType, "Content-Encoding", "zstd")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	// A body that is not what its encoding says is refused before the handler.
	resp, body = g.httpExport([]byte("not gzip"), pbContentType, "Content-Encoding", "gzip")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var st spb.Status
	require.NoError(t, proto.Unmarshal(body, &st))
	assert.NotEmpty(t, st.GetMessage())

	g.advance(2 * time.Second)
	for n := uint64(1); n <= 3; n++ {
		assert.Len(t, g.spansOf(n), 3, "trace %d", n)
	}
}

func TestHTTPMethodPathAndSize(t *testing.T) {
	cfg := testConfig()
	cfg.Protocols.HTTP.Get().ServerConfig.MaxRequestBodySize = 1 << 10
	g := newRig(t, cfg, nil)

	resp, err := g.http.Get(g.url)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	big := batch(spanSpec{Trace: 1, Span: 1, Attrs: map[string]any{"blob": string(bytes.Repeat([]byte("x"), 4<<10))}})
	hr, body := g.httpExport(marshal(t, big), pbContentType)
	assert.Equal(t, http.StatusRequestEntityTooLarge, hr.StatusCode, string(body))

	hr, _ = g.httpExport(marshal(t, batch(errorTrace(2)...)), pbContentType)
	assert.Equal(t, http.StatusOK, hr.StatusCode)
}

func TestShutdownAnswersUnavailable(t *testing.T) {
	set := receivertest.NewNopSettings(metadata.Type)
	r, err := newTestReceiver(set, testConfig(), consumertest.NewNop(), clock.Real{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	// The buffer stops taking spans before the servers have stopped: what
	// reaches the handlers then is refused as retryable.
	require.NoError(t, r.buf.Shutdown(context.Background()))
	body := marshal(t, batch(errorTrace(1)...))

	_, err = r.exportGRPC(context.Background(), body, nil)
	assert.Equal(t, codes.Unavailable, status.Code(err))

	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", pbContentType)
	rec := httptest.NewRecorder()
	r.handleTraces(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestShutdownFlushesKeptTraces(t *testing.T) {
	sink := new(consumertest.TracesSink)
	f := NewFactory()
	cfg := testConfig()
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	g := &rig{t: t, r: r.(*tailsiftReceiver)}
	conn, err := grpc.NewClient(g.r.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	g.conn = conn
	for n := uint64(1); n <= 50; n++ {
		tr := errorTrace(n)
		if n%2 == 0 {
			tr[1].Status = ptrace.StatusCodeOk
		}
		_, err = g.grpcExport(context.Background(), marshal(t, batch(tr...)))
		require.NoError(t, err)
	}
	require.NoError(t, conn.Close())
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, 25*3, sink.SpanCount(), "every error trace is decided and flushed on shutdown")
	require.NoError(t, r.Shutdown(context.Background()), "second Shutdown")
}

// The standard OTLP gRPC client (as the otlp exporters use it) talks to the
// raw-bytes service unchanged, partial success included.
func TestStandardGRPCClient(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	client := ptraceotlp.NewGRPCClient(g.conn)
	resp, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(batch(errorTrace(1)...)),
		grpc.UseCompressor(grpcgzip.Name))
	require.NoError(t, err)
	assert.Equal(t, int64(0), resp.PartialSuccess().RejectedSpans())

	td := batch(errorTrace(2)...)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty().SetName("no ids")
	resp, err = client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)
	assert.Equal(t, int64(1), resp.PartialSuccess().RejectedSpans())
	assert.Contains(t, resp.PartialSuccess().ErrorMessage(), "rejected 1 of 4 spans")

	_, err = client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(batch(spanSpec{Trace: 0, Span: 1})))
	require.NoError(t, err, "trace number 0 still has a non-zero ID")

	g.advance(2 * time.Second)
	assert.Len(t, g.spansOf(1), 3)
	assert.Len(t, g.spansOf(2), 3)
}

// refusing is a next consumer whose backend is down: every call fails with
// a retryable error.
type refusing struct{ calls atomic.Int64 }

func (r *refusing) ConsumeTraces(context.Context, ptrace.Traces) error {
	r.calls.Add(1)
	return errors.New("backend down")
}

func (*refusing) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// Defect 6: with the backend down, Shutdown (given no deadline, as by the
// collector) returns within output.shutdown_timeout, counts the kept spans
// it could not hand on, and nothing calls the next consumer afterwards.
func TestShutdownIsBoundedWithTheBackendDown(t *testing.T) {
	cfg := testConfig()
	cfg.Output.ShutdownTimeout = 300 * time.Millisecond
	cfg.Output.BatchTimeout = 0
	next := new(refusing)
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	clk := clocktest.NewFake(t0)
	before := goleak.IgnoreCurrent()
	r, err := newTestReceiver(set, cfg, next, clk)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	g := newClientRig(t, r)
	for n := uint64(1); n <= 10; n++ {
		g.sendGRPC(batch(errorTrace(n)...))
	}
	require.NoError(t, r.buf.Sync(context.Background()))
	clk.Advance(2 * time.Second) // quiet: the shards keep them and start retrying
	require.Eventually(t, func() bool { return next.calls.Load() > 0 }, 10*time.Second, time.Millisecond)

	start := time.Now()
	err = r.Shutdown(context.Background())
	took := time.Since(start)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, took, 5*time.Second)
	calls := next.calls.Load()
	assert.Equal(t, int64(30), metricValue(t, tel, "otelcol_receiver_tailsift_export_failures"),
		"each kept span counted once as not delivered")
	g.close()
	goleak.VerifyNone(t, before)
	assert.Equal(t, calls, next.calls.Load(), "the next consumer was called after Shutdown returned")
}
