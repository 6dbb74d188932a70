package tracebuf

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestTraceInTwoCutsSurvivesCrash: the late spans of a kept trace that
// fill more than one request of the output batch go in one flush, request
// by request. When the next consumer accepts the first and keeps refusing
// the second (a retryable refusal, retried), the first one's delivery
// record must not cover the trace: its spans in the second are not handed
// on. After a kill -9 during the retries, the restart sends them again.
func TestTraceInTwoCutsSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	out := newChanSink()
	var armed atomic.Bool
	var calls atomic.Int32
	refused, heal := make(chan struct{}), make(chan struct{})
	var once sync.Once
	emit := func(ctx context.Context, td ptrace.Traces) error {
		if armed.Load() && calls.Add(1) > 1 {
			select {
			case <-heal:
			default:
				once.Do(func() { close(refused) })
				return errors.New("the next consumer is busy") // retryable
			}
		}
		return out.emit(ctx, td)
	}
	clk := clocktest.NewFake(time.Unix(100, 0))
	b := storeBufferWith(t, st, emit, clk, func(c *Config) {
		c.Output.BatchMaxSpans = 2
		c.Output.BatchTimeout = time.Second
	})
	t.Cleanup(func() {
		select {
		case <-heal:
		default:
			close(heal)
		}
	})
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{7}, 2, ptrace.StatusCodeUnset)))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(2 * time.Second) // quiet: kept by the errors policy
	require.NoError(t, b.Sync(ctx))
	sent := spanStates(out.next(t))
	require.Len(t, sent, 2, "the kept trace goes out")

	// Four late spans: two requests of two, handed on in one flush.
	armed.Store(true)
	require.NoError(t, b.Ingest(ctx, encodePairs(t, []uint64{7}, []uint64{3, 4, 5, 6})))
	for span, state := range spanStates(out.next(t)) {
		sent[span] = state
	}
	select {
	case <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("the second request was not offered")
	}
	require.NoError(t, st.Sync(ctx))
	image := crashCopy(t, dir) // kill -9 during the retries
	t.Logf("sent before the crash: %v", sent)
	require.NotContains(t, sent, uint64(5), "the second request was refused")

	st2 := openTestStore(t, image)
	tr, err := st2.TraceInfo(tid(7))
	require.NoError(t, err)
	t.Logf("after the crash: keep=%v delivered=%v", tr.Decision.Keep, tr.Delivered)
	assert.False(t, tr.Delivered, "the first request's delivery does not cover the second's spans")
	out2, clk2, b2 := rigOn(t, st2, 200)
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	t.Logf("spans sent again after the restart: %d", n)
	require.NoError(t, b2.Sync(ctx))
	clk2.Advance(time.Second)
	require.NoError(t, b2.Sync(ctx))
	for len(out2.ch) > 0 {
		for span, state := range spanStates(<-out2.ch) {
			sent[span] = state
		}
	}
	assert.Contains(t, sent, uint64(5), "span 5 is sent, before the crash or after the restart")
	assert.Contains(t, sent, uint64(6), "span 6 is sent, before the crash or after the restart")
}
