package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"
)

// deepLevels nests an AnyValue in a span attribute 1.45 million levels deep
// (kvlist inside array inside kvlist...): a request of 19.8 MB, under the
// HTTP receiver's default max_request_body_size of 20 MiB. pdata's decoder
// recurses per level and overflows the goroutine stack's 1 GiB on it, a
// fatal error that ends a collector without the depth guard. (Measured with
// pdata v1.67.0: 200 000 levels, 2.3 MB, need between 64 and 256 MiB of
// stack, and 1 million levels, 13.5 MB, fit in 512 MiB.)
const deepLevels = 1_450_000

// deepGRPCMaxMiB raises the gRPC receiver's message limit (4 MiB by
// default) so that the same request reaches the decoder over gRPC too.
const deepGRPCMaxMiB = 32

// TestDeeplyNestedAnyValue sends one deeply nested request over each of
// OTLP/HTTP (plain and gzip) and OTLP/gRPC to the upstream otlp receiver,
// expects each to be refused as invalid (HTTP 400, gRPC InvalidArgument)
// with a message, and checks that the collector is still running and still
// accepts and forwards a normal trace afterwards.
func TestDeeplyNestedAnyValue(t *testing.T) {
	t.Parallel()
	snk := newSink(t)
	cfg := fastConfig(snk.addr)
	cfg.GRPCMaxMiB = deepGRPCMaxMiB
	col := startCollector(t, cfg)
	rng := newRand(t)

	span := otlpguardtest.TracesPaths[2] // a span attribute
	deep := otlpguardtest.Request(span, otlpguardtest.NestedAnyValue(deepLevels))
	t.Logf("request: %d bytes, %d levels", len(deep), deepLevels)

	postHTTP := func(t *testing.T, body []byte, encoding string) {
		req, err := http.NewRequestWithContext(ctxFor(t, 30*time.Second), http.MethodPost,
			"http://"+col.httpAddr+"/v1/traces", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-protobuf")
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, "the collector did not answer (collector running: %v)", col.running())
		respBody, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "response body: %q", respBody)
		assert.Contains(t, string(respBody), "nested deeper than", "the refusal says why")
	}

	t.Run("http", func(t *testing.T) {
		postHTTP(t, deep, "")
	})

	t.Run("http_gzip", func(t *testing.T) {
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		_, err := zw.Write(deep)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		postHTTP(t, zipped.Bytes(), "gzip")
	})

	t.Run("grpc", func(t *testing.T) {
		conn := dialGRPC(t, col.grpcAddr)
		var reply []byte
		err := conn.Invoke(ctxFor(t, 30*time.Second), exportMethod, deep, &reply, grpc.ForceCodec(rawCodec{}))
		require.Error(t, err, "a deeply nested request was accepted")
		st, ok := status.FromError(err)
		require.True(t, ok, "not a gRPC status: %v", err)
		assert.Equal(t, codes.InvalidArgument, st.Code(), "status: %v", st)
		assert.Contains(t, st.Message(), "nested deeper than", "the refusal says why")
	})

	t.Run("still_serving", func(t *testing.T) {
		require.True(t, col.running(), "collector exited after the deeply nested requests")
		valid := exportErrorTraces(t, col, rng)
		snk.awaitComplete(valid, 20*time.Second)
		snk.assertComplete(t, valid)
	})
}
