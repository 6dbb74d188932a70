package tailsiftreceiver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"google.golang.org/grpc/encoding"
)

// Defect 9: OTLP/HTTP cuts slow clients off by default.
func TestHTTPReadTimeoutDefaults(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{"http": nil}}).Unmarshal(cfg))
	srv := cfg.Protocols.HTTP.Get().ServerConfig
	assert.Equal(t, 10*time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 30*time.Second, srv.ReadTimeout)
}

// A client that sends its headers or its body too slowly is cut off by the
// configured timeouts, instead of holding its connection and buffer.
func TestHTTPSlowClientIsCutOff(t *testing.T) {
	tests := []struct {
		name string
		send string // all the client sends, then it stalls
	}{
		{name: "headers never end", send: "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"},
		{
			name: "body never ends",
			send: "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 20000000\r\n\r\n" +
				strings.Repeat("\x00", 1024),
		},
	}
	cfg := testConfig()
	h := cfg.Protocols.HTTP.Get()
	h.ServerConfig.ReadHeaderTimeout = 100 * time.Millisecond
	h.ServerConfig.ReadTimeout = 300 * time.Millisecond
	g := newRig(t, cfg, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.r.httpAddr.String())
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			_, err = io.WriteString(conn, tt.send)
			require.NoError(t, err)
			start := time.Now()
			// The server answers (400: the body read failed) or just closes;
			// either way the connection ends long before this deadline.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, err = io.Copy(io.Discard, conn)
			require.NoError(t, err, "the server must end the connection")
			assert.Less(t, time.Since(start), 5*time.Second)
		})
	}
}

// A Content-Length that announces far more than is sent does not make the
// receiver allocate what it announces.
func TestHTTPLyingContentLengthDoesNotAllocateIt(t *testing.T) {
	r := &tailsiftReceiver{maxBody: 64 << 20}
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", io.LimitReader(zeros{}, 1024))
	req.ContentLength = 20 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, code, err := r.readBody(req)
	runtime.ReadMemStats(&after)
	require.Error(t, err)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated for a 1 KiB body")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// readAnnounced returns exactly the announced body, whatever the size of
// the reads it arrives in.
func TestReadAnnounced(t *testing.T) {
	for _, n := range []int{1, firstRead - 1, firstRead, firstRead + 1, 5*firstRead + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := make([]byte, n)
			for i := range want {
				want[i] = byte(i * 7)
			}
			got, err := readAnnounced(bufio.NewReaderSize(bytes.NewReader(want), 16), int64(n))
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, n, cap(got), "no slack")
			_, err = readAnnounced(bytes.NewReader(want[:n-1]), int64(n))
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		})
	}
}

// A compressed body is bounded by max_request_body_size after
// decompression: a small bomb is refused, not inflated into memory.
func TestHTTPDecompressedBodyIsBounded(t *testing.T) {
	cfg := testConfig()
	h := cfg.Protocols.HTTP.Get()
	h.ServerConfig.MaxRequestBodySize = 1 << 20
	g := newRig(t, cfg, nil)
	inflated := make([]byte, 4<<20)

	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, err := w.Write(inflated)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	zs := enc.EncodeAll(inflated, nil)
	require.NoError(t, enc.Close())

	for name, body := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs} {
		t.Run(name, func(t *testing.T) {
			require.Less(t, len(body), 1<<20, "the compressed body fits the limit")
			resp, msg := g.httpExport(body, pbContentType, "Content-Encoding", name)
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(msg))
		})
	}
}

// TestHTTPJSONNestingIsBounded: OTLP/JSON goes through pdata's recursive
// decoder before wire.Scan bounds the nesting of the protobuf it becomes.
// A 2 MiB body nested 80 000 levels deep grew a goroutine's stack by tens
// of MiB (20 MiB, the default body limit, by 384 MiB, for 20 s); the body
// is refused before decoding now, as the otlp receiver's guard refuses it,
// and so is one nested with commas instead of brackets.
func TestHTTPJSONNestingIsBounded(t *testing.T) {
	g := newRig(t, testConfig(), nil)
	const levels = 80000
	deep := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":`)
	for range levels {
		deep = append(deep, `{"arrayValue":{"values":[`...)
	}
	resp, msg := g.httpExport(deep, jsonContentType)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(msg), "nested more than")

	commas := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"s","attributes":[{"key":"k","value":{"arrayValue":{"values":[`)
	for range levels {
		commas = append(commas, `,"arrayValue":,"values":,`...)
	}
	commas = append(commas, `}]}}]}]}]}]}`...)
	resp, msg = g.httpExport(commas, jsonContentType)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(msg), "malformed JSON")
}

// TestZstdWindowClaimIsRefused: nine bytes of zstd, a frame header naming a
// 512 MiB window and an empty last block, made the receiver allocate 513
// MiB per request, over HTTP (confighttp's decoder) and gRPC (configgrpc's
// registered compressor). Both decode with the window bounded now
// (internal/zstdlimit): the request is refused having allocated little.
func TestZstdWindowClaimIsRefused(t *testing.T) {
	claim := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x98, 0x01, 0x00, 0x00}
	g := newRig(t, testConfig(), nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, msg := g.httpExport(claim, pbContentType, "Content-Encoding", "zstd")
	runtime.ReadMemStats(&after)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(msg))
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated by the process for the request")

	r, err := encoding.GetCompressor("zstd").Decompress(bytes.NewReader(claim))
	if err == nil {
		_, err = io.ReadAll(r)
	}
	require.ErrorIs(t, err, zstd.ErrWindowSizeExceeded, "gRPC's zstd, as this binary registers it")
}
