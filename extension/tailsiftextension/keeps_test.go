package tailsiftextension

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// startKeeper starts the extension (modify changes its config) and a trace
// buffer using its store that hands what it keeps to emit, on a fake clock.
func startKeeper(t *testing.T, modify func(*Config), emit tracebuf.Emit) (*Extension, *tracebuf.Buffer, *clocktest.Fake, string) {
	t.Helper()
	return startKeeperWith(t, extensiontest.NewNopSettings(metadata.Type), modify, emit)
}

// startKeeperWith is startKeeper with the extension's settings.
func startKeeperWith(t *testing.T, set extension.Settings, modify func(*Config), emit tracebuf.Emit) (*Extension, *tracebuf.Buffer, *clocktest.Fake, string) {
	t.Helper()
	ecfg := createDefaultConfig().(*Config)
	ecfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	ecfg.Directory = t.TempDir()
	if modify != nil {
		modify(ecfg)
	}
	ext, err := newExtension(set, ecfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })
	base := "http://" + ext.Addr()
	id := component.NewID(metadata.Type)
	cfg := tracebuf.DefaultConfig()
	cfg.Shards = 1
	cfg.Output.BatchTimeout = 0
	cfg.Storage = &id
	clk := clocktest.NewFake(time.Unix(1000, 0))
	var buf *tracebuf.Buffer
	buf, err = tracebuf.New(cfg, emit, tracebuf.Settings{Clock: clk})
	require.NoError(t, err)
	require.NoError(t, buf.StartWithStorage(context.Background(), extHost{map[component.ID]component.Component{id: ext}}))
	t.Cleanup(func() { require.NoError(t, buf.ShutdownWithStorage(context.Background())) })
	return ext, buf, clk, base
}

// dropStored makes the buffer drop a one-span trace for each of ids (OK
// status, decided once quiet), and waits until the store has the decisions.
func dropStored(t *testing.T, ext *Extension, buf *tracebuf.Buffer, clk *clocktest.Fake, ids ...[16]byte) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		require.NoError(t, buf.Ingest(ctx, encodeTrace(t, id, 1, ptrace.StatusCodeOk)))
	}
	require.NoError(t, buf.Sync(ctx))
	clk.Advance(3 * time.Second)
	require.NoError(t, buf.Sync(ctx))
	require.NoError(t, buf.StoreSync(ctx))
	for _, id := range ids {
		info, err := ext.Store().TraceInfo(id)
		require.NoError(t, err)
		require.True(t, info.Decided && !info.Decision.Keep, "trace %x dropped", id)
	}
}

// gatedSink holds every call of the keeps' next consumer until open is
// closed, and counts the keeps (traces) it holds at once.
type gatedSink struct {
	open    chan struct{}
	entered chan [16]byte // each trace's first call
	mu      sync.Mutex
	seen    map[[16]byte]bool
	active  map[[16]byte]int
	peak    int
	spans   map[[16]byte]int
}

func newGatedSink() *gatedSink {
	return &gatedSink{
		open: make(chan struct{}), entered: make(chan [16]byte, 64),
		seen: map[[16]byte]bool{}, active: map[[16]byte]int{}, spans: map[[16]byte]int{},
	}
}

func (g *gatedSink) emit(ctx context.Context, td ptrace.Traces) error {
	id := [16]byte(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID())
	g.mu.Lock()
	g.active[id]++
	g.peak = max(g.peak, len(g.active))
	first := !g.seen[id]
	g.seen[id] = true
	g.mu.Unlock()
	if first {
		g.entered <- id
	}
	defer func() {
		g.mu.Lock()
		if g.active[id]--; g.active[id] == 0 {
			delete(g.active, id)
		}
		g.mu.Unlock()
	}()
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	g.spans[id] += td.SpanCount()
	g.mu.Unlock()
	return nil
}

// TestConcurrentKeepsBounded: one keep of a big stored trace holds a
// bounded working set (a 1 MiB chunk of stored spans and its pdata, a store
// block's buffers), but N keeps at once held N of them, unbounded in total.
// Here 4 clients keep 4 big dropped traces at once while the next consumer
// holds every request it is handed: at most max_concurrent_keeps (its
// default, 2) keeps may be under way at once, the others wait briefly, then
// get 503 with Retry-After and record nothing (the trace stays dropped, and
// can be kept later).
func TestConcurrentKeepsBounded(t *testing.T) {
	g := newGatedSink()
	var once sync.Once
	release := func() { once.Do(func() { close(g.open) }) }
	defer release()
	ext, buf, clk, base := startKeeper(t, nil, g.emit)
	st := ext.Store()
	const clients, bound = 4, 2 // bound: the default max_concurrent_keeps
	var ids [][16]byte
	for c := range clients {
		ids = append(ids, [16]byte{0x4e, 0xe9, byte(c + 1)})
	}
	dropStored(t, ext, buf, clk, ids...)
	// 16 requests of 1 000 spans of 200 random bytes: 4 MiB a trace, a
	// store block's worth.
	const requests, perRequest = 16, 1000
	for _, id := range ids {
		for r := range requests {
			require.True(t, st.AppendSpans([][16]byte{id}, bigRequest(t, id, r*perRequest, perRequest, 200)))
		}
		require.NoError(t, st.Sync(context.Background()))
	}
	before := liveHeap()

	type answer struct {
		id     [16]byte
		status int
		retry  string
		body   []byte
		err    error
	}
	answers := make(chan answer, clients)
	for _, id := range ids {
		go func() {
			resp, err := http.Post(base+"/api/v1/traces/"+hex.EncodeToString(id[:])+"/keep", "application/json", http.NoBody)
			if err != nil {
				answers <- answer{id: id, err: err}
				return
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			answers <- answer{id, resp.StatusCode, resp.Header.Get("Retry-After"), body, err}
		}()
	}
	// Every keep either reaches the next consumer (and stays there) or is
	// answered: the latter can only be a refusal while the consumer holds.
	var early []answer
	entered := 0
	timeout := time.After(30 * time.Second)
	for entered+len(early) < clients {
		select {
		case <-g.entered:
			entered++
		case a := <-answers:
			early = append(early, a)
		case <-timeout:
			require.FailNow(t, "keeps neither reached the next consumer nor were answered", "%d reached it, %d answered", entered, len(early))
		}
	}
	held := liveHeap() - before
	g.mu.Lock()
	peak := g.peak
	g.mu.Unlock()
	t.Logf("%d keeps at once: %d under way together, holding %d MiB of heap; %d refused", clients, peak, held>>20, len(early))
	assert.LessOrEqual(t, peak, bound, "%d keeps under way at once (holding %d MiB of heap), over max_concurrent_keeps", peak, held>>20)
	assert.Less(t, held, int64(bound*keepHeap), "%d keeps at once held %d MiB of heap", peak, held>>20)
	refused := map[[16]byte]bool{}
	for _, a := range early {
		require.NoError(t, a.err)
		assert.Equal(t, http.StatusServiceUnavailable, a.status, string(a.body))
		assert.Equal(t, "1", a.retry)
		assert.Contains(t, string(a.body), "max_concurrent_keeps")
		refused[a.id] = true
	}

	release()
	for range clients - len(early) {
		a := <-answers
		require.NoError(t, a.err)
		require.Equal(t, http.StatusOK, a.status, string(a.body))
		var kr keepResponse
		require.NoError(t, json.Unmarshal(a.body, &kr))
		assert.Equal(t, requests*perRequest+1, kr.Spans)
	}
	// A refused keep recorded nothing: its trace is still dropped, and
	// asked again, now that the others are done, it is kept.
	require.NoError(t, buf.StoreSync(context.Background()))
	for id := range refused {
		info, err := ext.Store().TraceInfo(id)
		require.NoError(t, err)
		assert.False(t, info.Decision.Keep, "a refused keep recorded no keep")
		g.mu.Lock()
		sent := g.spans[id]
		g.mu.Unlock()
		assert.Zero(t, sent, "a refused keep sent nothing")
		resp, body := post(t, base+"/api/v1/traces/"+hex.EncodeToString(id[:])+"/keep")
		assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		assert.Equal(t, requests*perRequest+1, g.spans[id], "every span of %x once", id)
	}
}

// keepHeap bounds the heap one keep of a big stored trace holds while the
// next consumer has a request of it: the request (1 MiB of stored spans)
// and its pdata, a store block's buffers (up to 8 MiB, more with -race:
// see blockBuffers).
const keepHeap = 12 << 20

// TestKeepTimeBounded: a keep retries what the next consumer refuses
// retryably until the request's context ends or the shutdown begins; a
// client that sets no deadline (curl's default) held its keep, and its
// share of max_concurrent_keeps, for as long as the next consumer refused,
// past the server's write_timeout, when its answer could no longer be
// written. A keep now ends before write_timeout: 504, the keep recorded and
// not delivered, so that it may be asked again.
func TestKeepTimeBounded(t *testing.T) {
	var mu sync.Mutex
	refusing := true
	calls := 0
	emit := func(context.Context, ptrace.Traces) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if refusing {
			return errors.New("next consumer busy") // retryable
		}
		return nil
	}
	const writeTimeout = 2 * time.Second
	ext, buf, clk, base := startKeeper(t, func(c *Config) { c.ServerConfig.WriteTimeout = writeTimeout }, emit)
	id := [16]byte{0x71, 0x3e}
	dropStored(t, ext, buf, clk, id)

	client := &http.Client{Timeout: 15 * time.Second} // the test's guard, not the client's deadline
	url := base + "/api/v1/traces/" + hex.EncodeToString(id[:]) + "/keep"
	start := time.Now()
	resp, err := client.Post(url, "application/json", http.NoBody)
	took := time.Since(start)
	require.NoError(t, err, "no answer after %v (write_timeout %v)", took, writeTimeout)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	t.Logf("answered %d after %v: %s", resp.StatusCode, took, body)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, string(body))
	assert.Less(t, took, writeTimeout, "answered within write_timeout")
	mu.Lock()
	assert.Greater(t, calls, 1, "retried while it could")
	refusing = false
	mu.Unlock()

	require.NoError(t, buf.StoreSync(context.Background()))
	info, err := ext.Store().TraceInfo(id)
	require.NoError(t, err)
	assert.True(t, info.Decision.Keep && !info.Delivered, "the keep is recorded, not delivered")
	resp, body = post(t, url)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "asked again: %s", body)
}

// A keep that finds max_concurrent_keeps taken for longer than it may
// wait is answered 503 with Retry-After: 1, counted with request=keep, and
// records nothing; once a keep is free, keeps are served again.
func TestKeepRefusalCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := extensiontest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	out := make(sink, 16)
	ext, buf, clk, base := startKeeperWith(t, set, func(c *Config) { c.MaxConcurrentKeeps = 1 }, out.emit)
	ext.keepWait = time.Millisecond
	id := [16]byte{0x7e, 0xf0}
	dropStored(t, ext, buf, clk, id)

	require.True(t, ext.keeps.TryAcquire(1), "another keep holds the only one")
	url := base + "/api/v1/traces/" + hex.EncodeToString(id[:]) + "/keep"
	resp, body := post(t, url)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Contains(t, string(body), "max_concurrent_keeps")
	assertRefusedOnce(t, tel, "keep")
	require.NoError(t, buf.StoreSync(context.Background()))
	info, err := ext.Store().TraceInfo(id)
	require.NoError(t, err)
	assert.False(t, info.Decision.Keep, "a refused keep recorded no keep")

	ext.keeps.Release(1)
	resp, body = post(t, url)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "served again: %s", body)
	assert.Equal(t, 1, (<-out).SpanCount())
}

func TestKeepTime(t *testing.T) {
	for _, tt := range []struct{ writeTimeout, want time.Duration }{
		{0, defaultKeepTime}, // no write_timeout
		{30 * time.Second, 29 * time.Second},
		{2 * time.Second, 1800 * time.Millisecond},
		{500 * time.Millisecond, 450 * time.Millisecond},
	} {
		assert.Equal(t, tt.want, keepTime(tt.writeTimeout), "write_timeout %v", tt.writeTimeout)
	}
}

// TestKeepEndsAtShutdown: a keep retrying what the next consumer refuses
// ends as the buffer's shutdown begins, whatever is left of its time, and
// says so: 503, the keep recorded and not delivered, so that the next
// start sends the trace again.
func TestKeepEndsAtShutdown(t *testing.T) {
	called := make(chan struct{}, 1)
	emit := func(context.Context, ptrace.Traces) error {
		select {
		case called <- struct{}{}:
		default:
		}
		return errors.New("next consumer busy") // retryable
	}
	ext, buf, clk, base := startKeeper(t, nil, emit) // write_timeout 30s: 29 s a keep
	id := [16]byte{0x5d, 0x07}
	dropStored(t, ext, buf, clk, id)

	type answer struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Post(base+"/api/v1/traces/"+hex.EncodeToString(id[:])+"/keep", "application/json", http.NoBody)
		if err != nil {
			done <- answer{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- answer{resp.StatusCode, body, err}
	}()
	<-called // the keep is retrying
	start := time.Now()
	require.NoError(t, buf.Shutdown(context.Background()))
	var a answer
	select {
	case a = <-done:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "the keep went on after the shutdown")
	}
	took := time.Since(start)
	t.Logf("answered %d %v after the shutdown began: %s", a.status, took, a.body)
	require.NoError(t, a.err)
	assert.Less(t, took, 5*time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, a.status, string(a.body))
	assert.Contains(t, string(a.body), "shutting down")
	require.NoError(t, ext.Store().Sync(context.Background()))
	info, err := ext.Store().TraceInfo(id)
	require.NoError(t, err)
	assert.True(t, info.Decision.Keep && !info.Delivered, "the keep is recorded, not delivered: the next start sends it")
}
