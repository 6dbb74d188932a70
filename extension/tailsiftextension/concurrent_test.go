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
	"go.opentelemetry.io/collector/pdata/ptrace"
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
