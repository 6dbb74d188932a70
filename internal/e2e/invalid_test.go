package e2e

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// malformedProto is not a valid ExportTraceServiceRequest: field 1
// (resource_spans) claims 5 bytes but only 1 follows.
var malformedProto = []byte{0x0a, 0x05, 0x01}

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// TestMalformedRequest sends a body that is not protobuf, expects it to be
// refused as a client error, and checks that the collector still accepts
// and forwards a valid trace afterwards.
func TestMalformedRequest(t *testing.T) {
	t.Parallel()
	snk := newSink(t)
	col := startCollector(t, fastConfig(snk.addr))
	rng := newRand(t)

	t.Run("http", func(t *testing.T) {
		resp, err := http.Post("http://"+col.httpAddr+"/v1/traces", "application/x-protobuf", bytes.NewReader(malformedProto))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "response body: %q", body)
	})

	t.Run("grpc", func(t *testing.T) {
		conn := dialGRPC(t, col.grpcAddr)
		var reply []byte
		err := conn.Invoke(ctxFor(t, 10*time.Second), exportMethod, malformedProto, &reply, grpc.ForceCodec(rawCodec{}))
		require.Error(t, err, "a malformed request was accepted")
		st, ok := status.FromError(err)
		require.True(t, ok, "not a gRPC status: %v", err)
		t.Logf("malformed gRPC request refused with %v", st)
		// grpc-go answers an undecodable request with Internal; the OTLP
		// receiver would say InvalidArgument. Either is a refusal of the
		// request itself, not of the collector being unavailable.
		assert.Contains(t, []codes.Code{codes.Internal, codes.InvalidArgument}, st.Code(), "status: %v", st)
	})

	t.Run("still_serving", func(t *testing.T) {
		require.True(t, col.running(), "collector exited after the malformed requests")
		valid := exportErrorTraces(t, col, rng)
		snk.awaitComplete(valid, 20*time.Second)
		snk.assertComplete(t, valid)
		snk.assertThreshold(t, valid, "0")
	})
}

// exportErrorTraces exports one new trace of the error class (which every
// test configuration keeps) over each transport, and returns them.
func exportErrorTraces(t *testing.T, col *collector, rng *rand.Rand) []*testTrace {
	t.Helper()
	var valid []*testTrace
	for _, tr := range transports {
		tt := newTrace(rng, classError, time.Now())
		exp := newExporter(t, tr, col)
		for _, chunk := range tt.chunks {
			require.NoError(t, exp.ExportSpans(ctxFor(t, 10*time.Second), chunk), "valid request over %s", tr)
		}
		valid = append(valid, tt)
	}
	return valid
}

// TestZeroTraceIDRejected sends a request holding an all-zero trace ID span
// next to a valid trace: the request must be refused as invalid (gRPC
// InvalidArgument, HTTP 400), the valid trace must still be kept and
// forwarded, and the invalid span must not be.
func TestZeroTraceIDRejected(t *testing.T) {
	t.Parallel()
	snk := newSink(t)
	col := startCollector(t, fastConfig(snk.addr))
	rng := newRand(t)

	send := map[transport]func(t *testing.T, req ptraceotlp.ExportRequest){
		overGRPC: func(t *testing.T, req ptraceotlp.ExportRequest) {
			client := ptraceotlp.NewGRPCClient(dialGRPC(t, col.grpcAddr))
			_, err := client.Export(ctxFor(t, 10*time.Second), req)
			require.Error(t, err, "a request with an all-zero trace ID was accepted")
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "status: %v", err)
		},
		overHTTP: func(t *testing.T, req ptraceotlp.ExportRequest) {
			body, err := req.MarshalProto()
			require.NoError(t, err)
			resp, err := http.Post("http://"+col.httpAddr+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
			require.NoError(t, err)
			respBody, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "response body: %q", respBody)
		},
	}

	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			valid := newTrace(rng, classError, time.Now())
			send[tr](t, requestWithZeroTraceID(valid))
			snk.awaitComplete([]*testTrace{valid}, 20*time.Second)
			snk.assertComplete(t, []*testTrace{valid})
			snk.assertThreshold(t, []*testTrace{valid}, "0")
			assert.Nil(t, snk.trace(pcommon.NewTraceIDEmpty()), "spans with an all-zero trace ID were forwarded")
		})
	}
}

// requestWithZeroTraceID returns one request holding all spans of valid
// and, in the middle of them, a span whose trace ID is all zeros.
func requestWithZeroTraceID(valid *testTrace) ptraceotlp.ExportRequest {
	var ro []sdktrace.ReadOnlySpan
	for _, chunk := range valid.chunks {
		ro = append(ro, chunk...)
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "e2e-raw")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(scope.Name)
	for i, s := range ro {
		if i == len(ro)/2 {
			bad := ss.Spans().AppendEmpty()
			bad.SetTraceID(pcommon.NewTraceIDEmpty())
			bad.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			bad.SetName("zero trace id")
			bad.SetStartTimestamp(pcommon.NewTimestampFromTime(s.StartTime()))
			bad.SetEndTimestamp(pcommon.NewTimestampFromTime(s.EndTime()))
			bad.Status().SetCode(ptrace.StatusCodeError)
		}
		appendSpan(ss.Spans(), s)
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// appendSpan appends the pdata form of an SDK span.
func appendSpan(spans ptrace.SpanSlice, s sdktrace.ReadOnlySpan) {
	span := spans.AppendEmpty()
	sc := s.SpanContext()
	span.SetTraceID(pcommon.TraceID(sc.TraceID()))
	span.SetSpanID(pcommon.SpanID(sc.SpanID()))
	if s.Parent().IsValid() {
		span.SetParentSpanID(pcommon.SpanID(s.Parent().SpanID()))
	}
	span.SetName(s.Name())
	span.SetKind(ptrace.SpanKind(s.SpanKind()))
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(s.StartTime()))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(s.EndTime()))
	switch s.Status().Code {
	case otelcodes.Error:
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage(s.Status().Description)
	case otelcodes.Ok:
		span.Status().SetCode(ptrace.StatusCodeOk)
	}
}

// dialGRPC returns a plaintext gRPC client connection closed with the test.
func dialGRPC(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// rawCodec sends and receives messages as they are, so that a test can put
// arbitrary bytes on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
