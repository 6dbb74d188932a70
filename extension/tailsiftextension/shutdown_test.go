package tailsiftextension

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
)

func newTestExtension(t *testing.T, dir string) *Extension {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Directory = dir
	ext, err := newExtension(extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	return ext
}

// TestShutdownWaitsForHandlers: when Shutdown's deadline ends while a
// request is served, http.Server.Close does not wait for its handler, and
// the store was closed (its field cleared, racing the handler's read)
// under a handler still running. Shutdown waits for the handlers now, at
// most handlerWait, and the store is read and cleared atomically.
func TestShutdownWaitsForHandlers(t *testing.T) {
	e := newTestExtension(t, t.TempDir())
	entered := make(chan struct{})
	var sawStore, finished atomic.Bool
	require.NoError(t, e.Handle("GET /slow", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		deadline := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(deadline) {
			if e.Store() != nil { // read while Shutdown runs
				sawStore.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
		finished.Store(true)
	})))
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	go func() {
		if resp, err := http.Get("http://" + e.Addr() + "/slow"); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = e.Shutdown(ctx)
	assert.True(t, finished.Load(), "Shutdown returned before the handler did")
	assert.True(t, sawStore.Load(), "the handler had the store until it finished")
	assert.Nil(t, e.Store())
}

// TestLifecycle: Shutdown without Start, Start after Shutdown.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	host := componenttest.NewNopHost()
	dir := t.TempDir()
	require.NoError(t, newTestExtension(t, dir).Shutdown(ctx), "without Start")
	e := newTestExtension(t, dir)
	require.NoError(t, e.Start(ctx, host))
	require.NoError(t, e.Shutdown(ctx))
	require.NoError(t, e.Start(ctx, host), "again after Shutdown")
	resp, err := http.Get("http://" + e.Addr() + "/api/v1/traces/0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.NoError(t, e.Shutdown(ctx))
}
