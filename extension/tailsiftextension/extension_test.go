package tailsiftextension

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
)

// startExtension starts the extension on a free loopback port and returns
// it with its base URL.
func startExtension(t *testing.T, modify func(*Config)) (*Extension, string) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Directory = t.TempDir()
	if modify != nil {
		modify(cfg)
	}
	ext, err := newExtension(extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })
	return ext, "http://" + ext.Addr()
}

func TestHandleMountsRoutes(t *testing.T) {
	ext, base := startExtension(t, nil)
	require.NoError(t, ext.Handle("GET /api/v1/example", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	require.EqualError(t, ext.Handle("GET /api/v1/example", http.NotFoundHandler()),
		`tailsift extension: route "GET /api/v1/example" is already mounted`)

	resp, err := http.Get(base + "/api/v1/example")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
}

func TestShutdownTwice(t *testing.T) {
	ext, _ := startExtension(t, nil)
	require.NoError(t, ext.Shutdown(context.Background()))
}
