package tailsiftreceiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestOverloadIsRetryable(t *testing.T) {
	cfg := testConfig()
	next := tracebuftest.NewStalled(&cfg.bufferConfig) // 1 MiB: the smallest queue allowed
	fitRequestsToQueue(cfg)
	g := newRig(t, cfg, next)
	g.r.queueWait.Store(int64(50 * time.Millisecond))
	released := false
	defer func() {
		if !released {
			close(next.Release)
		}
	}()

	// The first error span is decided at once (max_spans 1) and blocks the
	// only shard in the next consumer; the queue then fills up.
	g.sendGRPC(batch(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError}))
	<-next.Entered
	request := func(n uint64) []byte {
		specs := make([]spanSpec, 0, 200)
		for k := range uint64(200) {
			specs = append(specs, spanSpec{Trace: n*1000 + k, Span: 1, Attrs: map[string]any{"pad": "0123456789abcdef0123456789abcdef"}})
		}
		return marshal(t, batch(specs...))
	}

	var refused error
	n := uint64(2)
	for ; n < 1000 && refused == nil; n++ {
		_, refused = g.grpcExport(context.Background(), request(n))
	}
	require.Error(t, refused, "the queue never filled up")
	st, ok := status.FromError(refused)
	require.True(t, ok)
	assert.Equal(t, codes.Unavailable, st.Code(), "overload must be retryable")
	assert.Contains(t, st.Message(), "queue full")
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	require.NotNil(t, retry, "UNAVAILABLE must carry RetryInfo")
	assert.Equal(t, time.Second, retry.GetRetryDelay().AsDuration())

	resp, body := g.httpExport(request(n), pbContentType)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	var s spb.Status
	require.NoError(t, proto.Unmarshal(body, &s))
	assert.Equal(t, int32(codes.Unavailable), s.GetCode())
	assert.Contains(t, s.GetMessage(), "queue full")

	assert.Positive(t, g.metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "queue_full")))
	assert.Positive(t, g.metric("otelcol_receiver_refused_spans", attribute.String("transport", "grpc")))
	assert.Positive(t, g.metric("otelcol_receiver_refused_spans", attribute.String("transport", "http")))

	// Once the next consumer moves again, the receiver takes requests again.
	close(next.Release)
	released = true
	require.Eventually(t, func() bool {
		_, err := g.grpcExport(context.Background(), request(n+1))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
}

// A client deadline shorter than the queue wait still gets an answer in
// time: the receiver waits only half of what is left.
func TestOverloadAnswersBeforeTheClientDeadline(t *testing.T) {
	cfg := testConfig()
	next := tracebuftest.NewStalled(&cfg.bufferConfig)
	fitRequestsToQueue(cfg)
	g := newRig(t, cfg, next)
	defer close(next.Release)
	g.sendGRPC(batch(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError}))
	<-next.Entered
	specs := make([]spanSpec, 0, 200)
	for k := range uint64(200) {
		specs = append(specs, spanSpec{Trace: 100 + k, Span: 1, Attrs: map[string]any{"pad": string(make([]byte, 100))}})
	}
	body := marshal(t, batch(specs...))
	// Fill the queue, with a short wait for room.
	g.r.queueWait.Store(int64(20 * time.Millisecond))
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		_, err = g.grpcExport(context.Background(), body)
	}
	require.Error(t, err)
	g.r.queueWait.Store(int64(maxQueueWait))
	// Waiting the full maxQueueWait (2 s) would outlast this deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = g.grpcExport(ctx, body)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Less(t, time.Since(start), 1500*time.Millisecond)
}
