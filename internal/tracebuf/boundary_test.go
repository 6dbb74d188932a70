package tracebuf

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// counts is an Observer that counts spans by event.
type counts struct {
	NopObserver
	mu       sync.Mutex
	received int
	refused  map[string]int
	failed   int
}

func newCounts() *counts { return &counts{refused: map[string]int{}} }

func (c *counts) Received(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received += n
}

func (c *counts) Refused(reason string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refused[reason] += n
}

func (c *counts) ExportFailed(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed += n
}

func (c *counts) get() (received, failed int, refused map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := map[string]int{}
	for k, v := range c.refused {
		r[k] = v
	}
	return c.received, c.failed, r
}

// traceIn returns the first trace number from n on that shard sh owns.
func traceIn(b *Buffer, sh int, n uint64) uint64 {
	for {
		id := tid(n)
		if b.shardOf(&id) == sh {
			return n
		}
		n++
	}
}

// waitBlocked waits until a goroutine is blocked in fn, by its stack.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, fn) && (strings.Contains(head, "[select") || strings.Contains(head, "[chan send")) {
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond)
}

// returnsWithin runs f and fails the test if it has not returned by limit.
func returnsWithin(t *testing.T, limit time.Duration, f func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	res := make(chan error, 1)
	go func() { res <- f() }()
	select {
	case err := <-res:
		return time.Since(start), err
	case <-time.After(limit):
		require.FailNow(t, "did not return", "still running after %v", limit)
		return 0, nil
	}
}

// TestInvalidIDsAreAnInvalidError: spans with bad IDs are dropped with exact
// counts in a typed error that carries no transport status, and the rest
// of the request goes through (an OTLP partial success).
func TestInvalidIDsAreAnInvalidError(t *testing.T) {
	obs := newCounts()
	b, err := New(testBufferConfig(), (&collector{spans: map[[16]byte]int{}}).emit,
		Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Observer: obs})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	ss.AppendEmpty().SetSpanID(pcommon.SpanID{1}) // zero trace ID
	ok := ss.AppendEmpty()
	ok.SetTraceID(tid(1))
	ok.SetSpanID(pcommon.SpanID{2})
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	err = b.Ingest(context.Background(), buf)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Equal(t, 1, inv.Rejected)
	assert.Equal(t, 2, inv.Total)
	assert.True(t, inv.Partial())
	_, isStatus := err.(interface{ GRPCStatus() any })
	assert.False(t, isStatus)
	received, _, refused := obs.get()
	assert.Equal(t, 1, received)
	assert.Equal(t, map[string]int{RefusedInvalid: 1}, refused)

	err = b.Ingest(context.Background(), []byte{0x0a, 0xff})
	require.ErrorAs(t, err, &inv)
	assert.Zero(t, inv.Total, "a malformed request has no span count")
	assert.False(t, inv.Partial())
}

// down is a next consumer whose backend is down: every call fails with a
// retryable error.
type down struct {
	calls  atomic.Int64
	called chan struct{}
	once   sync.Once
}

func (d *down) emit(context.Context, ptrace.Traces) error {
	d.calls.Add(1)
	d.once.Do(func() { close(d.called) })
	return errors.New("backend down")
}

// Defect 6: with the next consumer down, Shutdown returns within its bound,
// the kept spans it could not hand on are counted once, and nothing calls
// the consumer after it returned.
func TestShutdownIsBoundedWithTheBackendDown(t *testing.T) {
	tests := []struct {
		name string
		// midRetry decides the traces at once and waits for the shard to be
		// retrying in its loop before Shutdown; otherwise they are decided
		// by Shutdown.
		midRetry bool
		timeout  time.Duration // output.shutdown_timeout
		deadline time.Duration // of Shutdown's ctx; 0 for none, as the collector
	}{
		{name: "flush retries until shutdown_timeout", timeout: 200 * time.Millisecond},
		{name: "shard mid-retry stops at shutdown_timeout", midRetry: true, timeout: 200 * time.Millisecond},
		{name: "ctx deadline wins over a longer timeout", timeout: time.Minute, deadline: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testBufferConfig()
			cfg.Shards = 2
			cfg.Output.ShutdownTimeout = tt.timeout
			cfg.Completion.MaxSpans = 100
			if tt.midRetry {
				cfg.Completion.MaxSpans = 1
				cfg.Output.BatchTimeout = 0
			}
			obs := newCounts()
			next := &down{called: make(chan struct{})}
			before := goleak.IgnoreCurrent()
			b, err := New(cfg, next.emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Observer: obs})
			require.NoError(t, err)
			b.Start()
			ctx := context.Background()
			require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8}, 1, ptrace.StatusCodeError)))
			require.NoError(t, b.Ingest(ctx, encode(t, []uint64{11, 12, 13, 14}, 1, ptrace.StatusCodeOk)))
			if tt.midRetry {
				<-next.called
			}
			sctx := ctx
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				sctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			took, err := returnsWithin(t, 10*time.Second, func() error { return b.Shutdown(sctx) })
			require.Error(t, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, took, 5*time.Second)
			callsAtReturn := next.calls.Load()
			assert.Positive(t, callsAtReturn, "the consumer was tried")
			goleak.VerifyNone(t, before)
			assert.Equal(t, callsAtReturn, next.calls.Load(), "the consumer was called after Shutdown returned")
			_, failed, _ := obs.get()
			assert.Equal(t, 8, failed, "each kept span counted once as not delivered")
			require.NoError(t, b.Shutdown(ctx), "a second Shutdown")
		})
	}
}

// hang is a next consumer that blocks until its ctx ends, once entered.
type hang struct {
	entered chan struct{}
	once    sync.Once
}

func (h *hang) emit(ctx context.Context, _ ptrace.Traces) error {
	h.once.Do(func() { close(h.entered) })
	<-ctx.Done()
	return ctx.Err()
}

// fillQueue ingests one-span requests of traces that shard sh owns until
// the buffer refuses one: its queue is then full.
func fillQueue(t *testing.T, b *Buffer, sh int) {
	t.Helper()
	n := uint64(1000)
	for i := 0; i < 2*shardQueueLen; i++ {
		n = traceIn(b, sh, n+1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		err := b.Ingest(ctx, encode(t, []uint64{n}, 1, ptrace.StatusCodeOk))
		cancel()
		if err != nil {
			require.ErrorIs(t, err, ErrQueueFull)
			return
		}
	}
	require.FailNow(t, "the queue never filled up")
}

// An Ingest waiting for queue room does not hold Shutdown back: it gives up
// with a retryable refusal, and Shutdown returns within its bound.
func TestShutdownDoesNotWaitForABlockedIngest(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Output.BatchTimeout = 0
	cfg.Output.ShutdownTimeout = 200 * time.Millisecond
	next := &hang{entered: make(chan struct{})}
	b, err := New(cfg, next.emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0))})
	require.NoError(t, err)
	b.Start()
	ctx := context.Background()
	// Kept at once (max_spans 1): the only shard hangs in the consumer.
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1}, 1, ptrace.StatusCodeError)))
	<-next.entered
	fillQueue(t, b, 0)
	blocked := make(chan error, 1)
	go func() { blocked <- b.Ingest(ctx, encode(t, []uint64{2}, 1, ptrace.StatusCodeError)) }()
	waitBlocked(t, "tracebuf.(*Buffer).IngestOwned")

	took, err := returnsWithin(t, 10*time.Second, func() error { return b.Shutdown(ctx) })
	require.Error(t, err)
	assert.Less(t, took, 5*time.Second)
	ierr := <-blocked
	require.ErrorIs(t, ierr, ErrQueueFull, "refused retryably")
	assert.ErrorIs(t, ierr, ErrShutdown)
}

// Defect 8: a request whose traces go to two shards, one of them with a
// full queue, is refused whole: the other shard gets none of it, and a
// retry delivers each span once.
func TestRefusalIsAllOrNothing(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Shards = 2
	cfg.Output.BatchTimeout = 0
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	release := make(chan struct{})
	var b *Buffer
	blocker := uint64(0)
	emit := func(ctx context.Context, td ptrace.Traces) error {
		if td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID() == pcommon.TraceID(tid(blocker)) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return out.emit(ctx, td)
	}
	b, err := New(cfg, emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Observer: obs})
	require.NoError(t, err)
	blocker = traceIn(b, 1, 1)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{blocker}, 1, ptrace.StatusCodeError)))
	waitBlocked(t, "TestRefusalIsAllOrNothing")
	fillQueue(t, b, 1)

	both := []uint64{traceIn(b, 0, 100), traceIn(b, 1, 100)}
	req := encode(t, both, 1, ptrace.StatusCodeError)
	receivedBefore, _, refusedBefore := obs.get()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err = b.Ingest(wctx, append([]byte(nil), req...))
	cancel()
	var refusal *RefusedError
	require.ErrorAs(t, err, &refusal)
	assert.Equal(t, 2, refusal.Spans)
	assert.ErrorIs(t, err, ErrQueueFull)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	received, _, refused := obs.get()
	assert.Equal(t, receivedBefore, received, "no span of the refused request was accepted")
	assert.Equal(t, refusedBefore[RefusedQueueFull]+2, refused[RefusedQueueFull])

	close(release)
	require.NoError(t, b.Sync(ctx))
	assert.Zero(t, out.count(tid(both[0])), "the shard with room must not have taken its part")
	require.NoError(t, b.Ingest(ctx, req), "the retry")
	require.NoError(t, b.Sync(ctx))
	for _, n := range both {
		assert.Equal(t, 1, out.count(tid(n)), "trace %d once", n)
	}
}

// The buffer's errors carry no transport status: no file of the package
// imports gRPC (the receiver maps the typed errors, the processor wraps them).
func TestNoTransportStatusInTheBuffer(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			assert.NotContains(t, imp.Path.Value, "google.golang.org/grpc", name)
		}
	}
}
