package tracebuf

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/wire"
)

// A request that weighs more than the whole of buffer.max_queued_bytes can
// never fit the queue: it is refused at once, permanently (a retry would be
// refused the same way), with an error that names the key to raise, and
// counted. It takes no room: a small request right after it is admitted
// without waiting. Before, it was admitted whenever the queue was empty,
// holding its full weight against a budget it was counted as filling.
func TestRequestOverQueueBudgetRefused(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	obs := newCounts()
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Observer: obs})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()

	big := encodeSized(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8}, 800, 400)
	var batch wire.Batch
	require.NoError(t, wire.Scan(big, &batch))
	weight := queueWeight(big, &batch)
	spans := len(batch.Spans)
	require.Greater(t, weight, int64(cfg.Buffer.MaxQueuedBytes), "the request must not fit the queue")

	// An idle buffer, and no deadline: it must not wait for room that can
	// never come.
	_, err = returnsWithin(t, 5*time.Second, func() error {
		return b.Ingest(context.Background(), append([]byte(nil), big...))
	})
	require.Error(t, err, "a request of %d bytes of queue weight (%.1f× buffer.max_queued_bytes of %d) was admitted",
		weight, float64(weight)/float64(cfg.Buffer.MaxQueuedBytes), cfg.Buffer.MaxQueuedBytes)
	assert.False(t, errors.Is(err, ErrQueueFull), "not retryable: a retry can never fit; got %v", err)
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, spans, tl.Spans)
	assert.Equal(t, int64(1<<20), tl.Max)
	assert.GreaterOrEqual(t, tl.Weight, int64(len(big)+spans*int(unsafe.Sizeof(wire.Span{}))), "its bytes and its scan")
	assert.Contains(t, err.Error(), "buffer.max_queued_bytes", "the error names the key to raise")
	received, _, refused := obs.get()
	assert.Zero(t, received, "no span of the request was taken")
	assert.Equal(t, spans, refused["too_large"], "its spans counted as refused, too large")
	assert.Zero(t, refused[RefusedQueueFull])

	// The refusal took no room in the queue.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{100}, 1, ptrace.StatusCodeError)), "a small request right after")

	// Spans taken in again were accepted once: refusing them would lose
	// them, so they still go in, waiting for the whole queue.
	n, err := b.IngestAgain(context.Background(), append([]byte(nil), big...), nil)
	require.NoError(t, err)
	assert.Equal(t, spans, n)
	require.NoError(t, b.Sync(context.Background()))
	received, _, _ = obs.get()
	assert.Equal(t, 1+spans, received)
}
