package tailsiftreceiver

import (
	"context"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tailsift/tailsift/internal/wire"
)

// nest wraps body in the framing of a request: resource_spans (1) >
// scope_spans (2) > span (2).
func nest(span []byte) []byte {
	ss := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), span)
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), ss)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
}

func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// malformedRequests are requests the receiver must refuse as a whole.
func malformedRequests(t *testing.T) map[string][]byte {
	tid := traceID(1)
	sid := spanID(1, 1)
	okIDs := cat(bytesField(1, tid[:]), bytesField(2, sid[:]))
	zeroIDs := ptrace.NewTraces()
	ss := zeroIDs.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	ss.AppendEmpty().SetName("no ids")
	ss.AppendEmpty().SetName("no ids either")
	// 100000 nested start-groups: past protowire's recursion limit.
	var groups []byte
	for range 100000 {
		groups = protowire.AppendTag(groups, 9, protowire.StartGroupType)
	}
	return map[string][]byte{
		"truncated varint length":        {0x0a, 0xff, 0xff},
		"truncated tag":                  {0x80},
		"wrong wire type resource_spans": {0x08, 0x01},
		"length past end":                {0x0a, 0x10, 0x01, 0x02},
		"length past end in span":        nest(cat(okIDs, []byte{0x2a, 0x7f, 'x'})),
		"wrong wire type for trace_id":   nest(cat(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7), bytesField(2, sid[:]))),
		"wrong wire type for start time": nest(cat(okIDs, protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 1))),
		"short trace_id":                 nest(cat(bytesField(1, tid[:5]), bytesField(2, sid[:]))),
		"long span_id":                   nest(cat(bytesField(1, tid[:]), bytesField(2, tid[:]))),
		"bad status code wire type":      nest(cat(okIDs, bytesField(15, bytesField(3, []byte{1})))),
		"all-zero ids":                   marshal(t, zeroIDs),
		"absurd group nesting":           nest(cat(okIDs, groups)),
		"unterminated group":             nest(cat(okIDs, protowire.AppendTag(nil, 9, protowire.StartGroupType))),
		"garbage":                        []byte("this is not a protobuf message, just text"),
	}
}

func TestMalformedRequestsAreRefused(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	valid := func(n uint64) {
		t.Helper()
		g.sendGRPC(batch(errorTrace(n)...))
		hr, body := g.httpExport(marshal(t, batch(errorTrace(n+1000)...)), pbContentType)
		require.Equal(t, http.StatusOK, hr.StatusCode, string(body))
	}
	n := uint64(1)
	for name, body := range malformedRequests(t) {
		t.Run(name, func(t *testing.T) {
			_, err := g.grpcExport(context.Background(), body)
			st, ok := status.FromError(err)
			require.True(t, ok, "%v", err)
			assert.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
			assert.NotEmpty(t, st.Message())

			hr, hb := g.httpExport(body, pbContentType)
			assert.Equal(t, http.StatusBadRequest, hr.StatusCode)
			assert.Equal(t, pbContentType, hr.Header.Get("Content-Type"))
			var s spb.Status
			require.NoError(t, proto.Unmarshal(hb, &s))
			assert.Equal(t, int32(codes.InvalidArgument), s.GetCode())
			assert.NotEmpty(t, s.GetMessage())
			t.Logf("%s: %s", name, s.GetMessage())

			valid(n) // the receiver still takes valid requests
			n++
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		hr, hb := g.httpExport(marshal(t, batch(errorTrace(1)...)), "text/plain")
		assert.Equal(t, http.StatusUnsupportedMediaType, hr.StatusCode)
		assert.Contains(t, string(hb), "unsupported media type")
		hr, _ = g.httpExport(marshal(t, batch(errorTrace(1)...)), "")
		assert.Equal(t, http.StatusUnsupportedMediaType, hr.StatusCode)
	})
	t.Run("malformed json", func(t *testing.T) {
		hr, hb := g.httpExport([]byte(`{"resourceSpans": [{"scopeSpans": 5}]`), jsonContentType)
		assert.Equal(t, http.StatusBadRequest, hr.StatusCode)
		assert.Equal(t, jsonContentType, hr.Header.Get("Content-Type"))
		var s spb.Status
		require.NoError(t, protojson.Unmarshal(hb, &s), string(hb))
		assert.Equal(t, int32(codes.InvalidArgument), s.GetCode())
		assert.NotEmpty(t, s.GetMessage())
	})
	t.Run("json with all-zero ids", func(t *testing.T) {
		td := ptrace.NewTraces()
		td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
		js, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		require.NoError(t, err)
		hr, hb := g.httpExport(js, jsonContentType)
		assert.Equal(t, http.StatusBadRequest, hr.StatusCode, string(hb))
	})
	t.Run("empty request is a success", func(t *testing.T) {
		out, err := g.grpcExport(context.Background(), nil)
		require.NoError(t, err)
		assert.Empty(t, out)
		hr, _ := g.httpExport(nil, pbContentType)
		assert.Equal(t, http.StatusOK, hr.StatusCode)
	})
	valid(n)
	g.advance(2 * time.Second)
	for k := uint64(1); k <= n; k++ {
		assert.Len(t, g.spansOf(k), 3, "trace %d", k)
		assert.Len(t, g.spansOf(k+1000), 3, "trace %d", k+1000)
	}
	assert.Positive(t, g.metric("otelcol_receiver_refused_spans"))
}

// TestMutatedRequests feeds the handlers random corruptions of a valid
// request: every answer is a success, a partial success or
// INVALID_ARGUMENT, and nothing panics.
func TestMutatedRequests(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	td := batch(errorTrace(1)...)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("k", "v")
	base := marshal(t, td)
	rnd := rand.New(rand.NewPCG(1, 2))
	codesSeen := map[codes.Code]int{}
	for i := range 3000 {
		b := append([]byte(nil), base...)
		switch i % 4 {
		case 0: // flip bytes
			for range 1 + rnd.IntN(4) {
				b[rnd.IntN(len(b))] ^= byte(1 + rnd.IntN(255))
			}
		case 1: // truncate
			b = b[:rnd.IntN(len(b))]
		case 2: // splice in random bytes
			at := rnd.IntN(len(b))
			junk := make([]byte, 1+rnd.IntN(8))
			for k := range junk {
				junk[k] = byte(rnd.Uint32())
			}
			b = append(b[:at], append(junk, b[at:]...)...)
		case 3: // set a byte to a varint continuation
			b[rnd.IntN(len(b))] = 0xff
		}
		out, err := g.r.exportGRPC(context.Background(), b, nil)
		code := status.Code(err)
		codesSeen[code]++
		switch code {
		case codes.OK:
			resp := ptraceotlp.NewExportResponse()
			require.NoError(t, resp.UnmarshalProto(out))
		case codes.InvalidArgument:
		default:
			t.Fatalf("mutation %d: unexpected %v", i, err)
		}
	}
	t.Logf("answers: %v", codesSeen)
	assert.Positive(t, codesSeen[codes.InvalidArgument])
	g.sendGRPC(batch(errorTrace(2)...))
	g.advance(31 * time.Second)
	assert.Len(t, g.spansOf(2), 3)
}

// An attribute value nested as deeply as wire.MaxAnyValueDepth allows is
// buffered and, when the trace is kept, reaches the next consumer intact, as
// pdata decodes it. One level deeper is refused at intake: pdata decodes by
// unbounded recursion, and far deeper input overflows the stack.
func TestDeeplyNestedValidAttributeIsKept(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	span := func(n uint64, levels int) []byte {
		v := bytesField(1, []byte("leaf")) // AnyValue.string_value
		for range levels - 1 {
			kv := cat(bytesField(1, []byte("k")), bytesField(2, v)) // KeyValue{key, value}
			v = bytesField(6, bytesField(1, kv))                    // AnyValue.kvlist_value{values}
		}
		tid := traceID(n)
		sid := spanID(n, 1)
		return cat(bytesField(1, tid[:]), bytesField(2, sid[:]),
			bytesField(9, cat(bytesField(1, []byte("deep")), bytesField(2, v))),                          // attributes
			bytesField(15, protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 2))) // status ERROR
	}
	_, err := g.grpcExport(context.Background(), nest(span(2, wire.MaxAnyValueDepth+1)))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	out, err := g.grpcExport(context.Background(), nest(span(1, wire.MaxAnyValueDepth)))
	require.NoError(t, err)
	assert.Empty(t, out)
	g.advance(31 * time.Second)
	assert.Empty(t, g.spansOf(2))
	got := g.spansOf(1)
	require.Len(t, got, 1)
	deep, ok := got[1].Attributes().Get("deep")
	require.True(t, ok)
	depth := 0
	for deep.Type() == pcommon.ValueTypeMap {
		deep, _ = deep.Map().Get("k")
		depth++
	}
	assert.Equal(t, wire.MaxAnyValueDepth-1, depth)
	assert.Equal(t, "leaf", deep.Str())
}
