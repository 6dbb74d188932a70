package tailsiftextension

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// extHost is a host holding one tailsift extension.
type extHost struct {
	exts map[component.ID]component.Component
}

func (h extHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// sink hands each emitted request to a channel.
type sink chan ptrace.Traces

func (s sink) emit(_ context.Context, td ptrace.Traces) error {
	s <- td
	return nil
}

func encodeTrace(t *testing.T, id [16]byte, spans int, status ptrace.StatusCode) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for k := range spans {
		sp := ss.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(id))
		sp.SetSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, byte(k + 1)})
		if k > 0 {
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
		}
		sp.SetName("GET /cart")
		sp.Status().SetCode(status)
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// startWithBuffer starts the extension and a trace buffer using it, on a
// fake clock.
func startWithBuffer(t *testing.T) (*tracebuf.Buffer, *clocktest.Fake, sink, string) {
	t.Helper()
	ext, base := startExtension(t, nil)
	id := component.NewID(metadata.Type)
	cfg := tracebuf.DefaultConfig()
	cfg.Shards = 1
	cfg.Output.BatchTimeout = 0
	cfg.Storage = &id
	out := make(sink, 16)
	clk := clocktest.NewFake(time.Unix(1000, 0))
	buf, err := tracebuf.New(cfg, out.emit, tracebuf.Settings{Clock: clk})
	require.NoError(t, err)
	require.NoError(t, buf.StartWithStorage(context.Background(), extHost{map[component.ID]component.Component{id: ext}}))
	t.Cleanup(func() { require.NoError(t, buf.ShutdownWithStorage(context.Background())) })
	return buf, clk, out, base
}

func get(t *testing.T, url string, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, http.NoBody)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, body
}

func post(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", http.NoBody)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, body
}

func TestRetrievalAPI(t *testing.T) {
	ctx := context.Background()
	buf, clk, out, base := startWithBuffer(t)
	dropped := [16]byte{0xd0, 1}
	kept := [16]byte{0xe0, 2}
	require.NoError(t, buf.Ingest(ctx, encodeTrace(t, dropped, 3, ptrace.StatusCodeOk)))
	require.NoError(t, buf.Ingest(ctx, encodeTrace(t, kept, 2, ptrace.StatusCodeError)))
	require.NoError(t, buf.Sync(ctx))
	clk.Advance(3 * time.Second) // quiet: decided
	require.NoError(t, buf.Sync(ctx))
	<-out // the error trace
	require.NoError(t, buf.StoreSync(ctx))

	url := func(id [16]byte) string { return base + "/api/v1/traces/" + hex.EncodeToString(id[:]) }

	t.Run("json", func(t *testing.T) {
		resp, body := get(t, url(dropped), "")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.Equal(t, "drop", resp.Header.Get(headerDecision))
		assert.Equal(t, "quiet", resp.Header.Get(headerReason))
		assert.Empty(t, resp.Header.Values(headerThreshold), "a dropped trace has no threshold")
		var u ptrace.JSONUnmarshaler
		td, err := u.UnmarshalTraces(body)
		require.NoError(t, err)
		assert.Equal(t, 3, td.SpanCount())
	})
	t.Run("protobuf", func(t *testing.T) {
		resp, body := get(t, url(kept), protobufType)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, protobufType, resp.Header.Get("Content-Type"))
		assert.Equal(t, "keep", resp.Header.Get(headerDecision))
		assert.Equal(t, "errors", resp.Header.Get(headerPolicy))
		assert.Equal(t, "0", resp.Header.Get(headerThreshold), "kept by the errors policy: th:0, probability 1")
		var u ptrace.ProtoUnmarshaler
		td, err := u.UnmarshalTraces(body)
		require.NoError(t, err)
		assert.Equal(t, 2, td.SpanCount())
	})
	errs := []struct {
		name, path string
		status     int
	}{
		{"unknown", "/api/v1/traces/0123456789abcdef0123456789abcdef", http.StatusNotFound},
		{"short", "/api/v1/traces/0123", http.StatusBadRequest},
		{"not hex", "/api/v1/traces/zz23456789abcdef0123456789abcdef", http.StatusBadRequest},
		{"all zero", "/api/v1/traces/00000000000000000000000000000000", http.StatusBadRequest},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, base+tt.path, "")
			assert.Equal(t, tt.status, resp.StatusCode, string(body))
		})
	}

	t.Run("keep", func(t *testing.T) {
		resp, body := post(t, url(dropped)+"/keep")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var kr keepResponse
		require.NoError(t, json.Unmarshal(body, &kr))
		assert.Equal(t, keepResponse{TraceID: hex.EncodeToString(dropped[:]), Spans: 3, Rule: "retroactive"}, kr)
		td := <-out
		assert.Equal(t, 3, td.SpanCount())
		root := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		rule, ok := root.Attributes().Get("sampling.rule")
		require.True(t, ok)
		assert.Equal(t, "retroactive", rule.Str())

		resp, _ = post(t, url(kept)+"/keep")
		assert.Equal(t, http.StatusConflict, resp.StatusCode, "kept already")
		resp, _ = post(t, base+"/api/v1/traces/0123456789abcdef0123456789abcdef/keep")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, _ = post(t, base+"/api/v1/traces/xyz/keep")
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestStartFaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o640))
	shared := t.TempDir()
	_, _ = startExtension(t, func(c *Config) { c.Directory = shared })

	tests := []struct {
		name string
		dir  string
		err  string
	}{
		{"unwritable directory", filepath.Join(file, "store"), `tailsift extension: directory "` + filepath.Join(file, "store") + `": create directory`},
		{"directory in use", shared, "in use by another collector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
			cfg.Directory = tt.dir
			ext, err := newExtension(extensiontest.NewNopSettings(metadata.Type), cfg)
			require.NoError(t, err)
			err = ext.Start(context.Background(), extHost{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			require.NoError(t, ext.Shutdown(context.Background()))
		})
	}
}
