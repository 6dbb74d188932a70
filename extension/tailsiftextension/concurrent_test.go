package tailsiftextension

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
)

// liveHeap is the heap the process holds after a collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestConcurrentBigTraceResponsesBounded: max_response_bytes bounds one
// GET, but N GETs of big traces at once held N responses of it. Here 4
// clients ask for a trace of over 16 MiB stored, max_response_bytes 16 MiB,
// and read nothing until each has its answer: every GET that was served
// holds its whole response while the client does not read. The responses
// held at once must stay within max_concurrent_response_bytes (its default,
// 16 MiB, one such response): the others wait briefly, then get 503 with
// Retry-After. Once read, every response served is the trace's first spans
// up to the limit.
func TestConcurrentBigTraceResponsesBounded(t *testing.T) {
	const limit = 16 << 20
	ext, base := startExtension(t, func(c *Config) { c.MaxResponseBytes = limit })
	st := ext.Store()
	id := [16]byte{0xc0, 0x4c}
	const requests, perRequest = 80, 1000
	for r := range requests {
		require.True(t, st.AppendSpans([][16]byte{id}, bigRequest(t, id, r*perRequest, perRequest, 200)))
		if r%16 == 15 {
			require.NoError(t, st.Sync(context.Background()))
		}
	}
	require.NoError(t, st.Sync(context.Background()))
	require.Greater(t, st.Stats().BytesIn.Load(), int64(limit))
	const budget = 16 << 20 // the default max_concurrent_response_bytes

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	url := base + "/api/v1/traces/" + hex.EncodeToString(id[:])
	before := liveHeap()

	const clients = 4
	type answer struct {
		resp *http.Response
		err  error
	}
	answers := make(chan answer, clients)
	for range clients {
		go func() {
			req, err := http.NewRequest(http.MethodGet, url, http.NoBody)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			req.Header.Set("Accept", protobufType)
			resp, err := client.Do(req)
			answers <- answer{resp, err}
		}()
	}
	// Each client has its answer's headers and reads no body yet: a GET
	// served holds its response until its client reads it.
	var got []*http.Response
	for range clients {
		a := <-answers
		require.NoError(t, a.err)
		got = append(got, a.resp)
	}
	held := liveHeap() - before
	served := 0
	for _, resp := range got {
		if resp.StatusCode == http.StatusOK {
			served++
			continue
		}
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	}
	t.Logf("%d GETs, %d served at once, holding %d MiB of heap (budget %d MiB)", clients, served, held>>20, budget>>20)
	assert.Less(t, held, int64(budget+8<<20), "%d GETs at once held %d MiB of heap, over the %d MiB of max_concurrent_response_bytes",
		served, held>>20, budget>>20)
	assert.Equal(t, budget/limit, served, "as many GETs served at once as the budget holds")

	var wg sync.WaitGroup
	for _, resp := range got {
		wg.Go(func() {
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			if resp.StatusCode != http.StatusOK {
				return
			}
			assert.LessOrEqual(t, len(body), limit)
			var u ptrace.ProtoUnmarshaler
			td, err := u.UnmarshalTraces(body)
			assert.NoError(t, err)
			assert.Positive(t, td.SpanCount())
		})
	}
	wg.Wait()

	// The budget is given back: the next GET is served at once.
	start := time.Now()
	resp, body := get(t, url, protobufType)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Less(t, time.Since(start), 10*time.Second)
}

// A GET that finds max_concurrent_response_bytes taken for longer than it
// may wait is answered 503 with Retry-After: 1, and counted; once the
// budget is given back, GETs are served again.
func TestResponseBudgetRefusalCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Directory = t.TempDir()
	set := extensiontest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	ext, err := newExtension(set, cfg)
	require.NoError(t, err)
	ext.responseWait = time.Millisecond
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })

	// Other reads hold the whole budget.
	require.True(t, ext.responses.TryAcquire(int64(cfg.MaxConcurrentResponseBytes)))
	url := "http://" + ext.Addr() + "/api/v1/traces/" + hex.EncodeToString([]byte{1: 1, 15: 0})
	resp, body := get(t, url, protobufType)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Contains(t, string(body), "max_concurrent_response_bytes")
	assertRefusedOnce(t, tel, "get")

	ext.responses.Release(int64(cfg.MaxConcurrentResponseBytes))
	resp, body = get(t, url, protobufType)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "served again (an unknown trace): %s", body)
}

// assertRefusedOnce checks that the API refused one request, of kind
// request (get or keep), in otelcol_extension_tailsift_api_responses_refused.
func assertRefusedOnce(t *testing.T, tel *componenttest.Telemetry, request string) {
	t.Helper()
	m, err := tel.GetMetric("otelcol_extension_tailsift_api_responses_refused")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	require.Len(t, sum.DataPoints, 1)
	assert.Equal(t, int64(1), sum.DataPoints[0].Value)
	assert.Equal(t, attribute.NewSet(attribute.String("request", request)), sum.DataPoints[0].Attributes)
}
