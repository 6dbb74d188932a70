package tailsiftextension

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// bigRequest encodes spans spans of trace id, each with padding random
// bytes so that the store does not compress them away.
func bigRequest(t *testing.T, id [16]byte, first, spans, padding int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for k := first; k < first+spans; k++ {
		sp := ss.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(id))
		sp.SetSpanID(pcommon.SpanID{1, byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)})
		sp.SetName("GET /cart")
		pad := make([]byte, padding)
		_, _ = rand.Read(pad)
		sp.Attributes().PutEmptyBytes("pad").FromRaw(pad)
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// blockBuffers bounds what reading the blocks costs a request whatever
// its limit: a block holds up to 4 MiB of records, read compressed, then
// opened, and their decoder; with -race, 24 MiB.
const blockBuffers = 24 << 20

// allocatedBy returns the bytes the process allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBigTraceResponseBounded: GET /api/v1/traces/{id} read the whole
// stored trace into memory, decoded it into pdata and encoded it again: for
// a trace of 31 MiB stored (128 requests of 1 000 spans) one request
// allocated 782 MiB (JSON) or 349 MiB (protobuf), the client's reading of
// the response included. The response holds the trace's first spans up to
// max_response_bytes now (1 MiB here), says so in Tailsift-Truncated and
// Tailsift-Spans-Omitted, and one request allocates a small multiple of
// the limit, whatever the trace's size (the JSON is encoded a chunk at a
// time).
func TestBigTraceResponseBounded(t *testing.T) {
	ext, base := startExtension(t, func(c *Config) { c.MaxResponseBytes = 1 << 20 })
	st := ext.Store()
	id := [16]byte{0xb1, 0x9}
	const requests, perRequest = 128, 1000
	for r := range requests {
		req := bigRequest(t, id, r*perRequest, perRequest, 200)
		require.True(t, st.AppendSpans([][16]byte{id}, req))
		if r%16 == 15 {
			require.NoError(t, st.Sync(context.Background()))
		}
	}
	require.NoError(t, st.Sync(context.Background()))
	stored := st.Stats().BytesIn.Load()
	require.Greater(t, stored, int64(30<<20))
	limit := int64(ext.cfg.MaxResponseBytes)

	url := base + "/api/v1/traces/" + hex.EncodeToString(id[:])
	for _, tt := range []struct {
		accept string
		factor uint64 // allocated / max_response_bytes, at most, beyond blockBuffers
	}{
		{"", 24}, // the JSON is about 1.7 times larger, and encoded through pdata
		{protobufType, 8},
	} {
		accept := tt.accept
		t.Run("accept="+accept, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			alloc := allocatedBy(func() {
				resp, body = get(t, url, accept)
			})
			t.Logf("stored %d MiB, response %d KiB, allocated %d MiB for one request", stored>>20, len(body)>>10, alloc>>20)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Less(t, alloc, blockBuffers+tt.factor*uint64(limit), "one request allocates a small multiple of max_response_bytes")
			assert.Equal(t, "true", resp.Header.Get(headerTruncated))

			var td ptrace.Traces
			var err error
			if accept == protobufType {
				assert.LessOrEqual(t, int64(len(body)), limit)
				var u ptrace.ProtoUnmarshaler
				td, err = u.UnmarshalTraces(body)
			} else {
				var u ptrace.JSONUnmarshaler
				td, err = u.UnmarshalTraces(body)
			}
			require.NoError(t, err)
			returned := td.SpanCount()
			assert.Positive(t, returned)
			omitted, err := strconv.Atoi(resp.Header.Get(headerOmitted))
			require.NoError(t, err)
			assert.Equal(t, requests*perRequest, returned+omitted, "returned and omitted spans add up to the stored ones")
			first := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SpanID()
			assert.Equal(t, pcommon.SpanID{1}, first, "the first spans recorded come first")
		})
	}

	t.Run("small trace whole", func(t *testing.T) {
		small := [16]byte{0x5a, 1}
		require.True(t, st.AppendSpans([][16]byte{small}, bigRequest(t, small, 0, 10, 10)))
		require.NoError(t, st.Sync(context.Background()))
		resp, body := get(t, base+"/api/v1/traces/"+hex.EncodeToString(small[:]), protobufType)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Empty(t, resp.Header.Values(headerTruncated))
		assert.Empty(t, resp.Header.Values(headerOmitted))
		var u ptrace.ProtoUnmarshaler
		td, err := u.UnmarshalTraces(body)
		require.NoError(t, err)
		assert.Equal(t, 10, td.SpanCount())
	})
}
