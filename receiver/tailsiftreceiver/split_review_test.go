package tailsiftreceiver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/internal/wire"
)

// overQueue is a request within a 1 MiB request size limit (about 700 KB)
// weighing more than a 1 MiB queue.
func overQueue(t *testing.T, first uint64) ([]byte, int) {
	t.Helper()
	var specs []spanSpec
	for n := range uint64(10) {
		for k := range uint64(500) {
			specs = append(specs, spanSpec{Trace: first + n, Span: k + 2, Parent: 1, Attrs: map[string]any{"pad": "0123456789abcdef0123456789"}})
		}
	}
	req := marshal(t, batch(specs...))
	require.Less(t, len(req), 1<<20)
	var b wire.Batch
	require.NoError(t, wire.Scan(req, &b))
	require.Greater(t, tracebuf.QueueWeight(len(req), len(b.Spans), len(b.Scopes)), int64(1<<20))
	return req, len(specs)
}

// A request heavier than the queue, refused part-way (a piece found no
// room): the answer is retryable, and what the receiver reports, its
// standard accepted and refused counts and its own, agrees with what was
// taken in, over gRPC and over HTTP.
func TestPartWayRefusalReportsWhatWasTaken(t *testing.T) {
	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			cfg := testConfig()
			next := tracebuftest.NewStalled(&cfg.bufferConfig)
			fitRequestsToQueue(cfg)
			g := newRig(t, cfg, next)
			g.r.queueWait.Store(int64(50 * time.Millisecond))
			defer close(next.Release)

			g.sendGRPC(batch(spanSpec{Trace: 1, Span: 1, Status: ptrace.StatusCodeError}))
			<-next.Entered
			acceptedBefore := g.metric("otelcol_receiver_accepted_spans", attribute.String("transport", transport))
			receivedBefore := g.metric("otelcol_receiver_tailsift_spans_received")

			req, spans := overQueue(t, 100)
			var msg string
			if transport == "grpc" {
				_, err := g.grpcExport(context.Background(), req)
				require.Error(t, err)
				st, _ := status.FromError(err)
				assert.Equal(t, codes.Unavailable, st.Code())
				retry := false
				for _, d := range st.Details() {
					_, ok := d.(*errdetails.RetryInfo)
					retry = retry || ok
				}
				assert.True(t, retry, "RetryInfo")
				msg = st.Message()
			} else {
				resp, body := g.httpExport(req, pbContentType)
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				assert.Equal(t, "1", resp.Header.Get("Retry-After"))
				var s spb.Status
				require.NoError(t, proto.Unmarshal(body, &s))
				msg = s.GetMessage()
			}
			taken := g.metric("otelcol_receiver_tailsift_spans_received") - receivedBefore
			require.Positive(t, taken, "no piece taken: nothing to check")
			require.Less(t, taken, int64(spans))
			assert.Contains(t, msg, fmt.Sprintf("%d spans taken in", taken))
			assert.Equal(t, taken, g.metric("otelcol_receiver_accepted_spans", attribute.String("transport", transport))-acceptedBefore,
				"accepted spans: those taken in")
			assert.Equal(t, int64(spans)-taken, g.metric("otelcol_receiver_refused_spans", attribute.String("transport", transport)),
				"refused spans: the others")
			assert.Equal(t, int64(spans)-taken, g.metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "queue_full")))
		})
	}
}

// A request of small spans and one span heavier than the whole queue with
// its resource and scope, within the request size limit: the small spans
// are taken in, the heavy one refused, and the answer is a partial
// success that counts it, as the standard counts do.
func TestHeavySpanPartialSuccess(t *testing.T) {
	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			cfg := testConfig()
			cfg.Buffer.MaxQueuedBytes = 1 << 20
			fitRequestsToQueue(cfg)
			g := newRig(t, cfg, nil)

			// The heavy span: its bytes alone just under the queue.
			specs := []spanSpec{{Trace: 7, Span: 2, Parent: 1, Attrs: map[string]any{"pad": strings.Repeat("x", 1<<20-290)}}}
			for k := range uint64(1) {
				specs = append(specs, spanSpec{Trace: 8, Span: k + 2, Parent: 1})
			}
			req := marshal(t, batch(specs...))
			require.LessOrEqual(t, len(req), 1<<20, "within the request size limit")

			var rejected int64
			var msg string
			if transport == "grpc" {
				resp, err := g.grpcExport(context.Background(), req)
				require.NoError(t, err)
				rejected, msg = partialSuccess(t, resp)
			} else {
				resp, body := g.httpExport(req, pbContentType)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
				rejected, msg = partialSuccess(t, body)
			}
			assert.Equal(t, int64(1), rejected)
			assert.Contains(t, msg, "buffer.max_queued_bytes")
			assert.Equal(t, int64(1), g.metric("otelcol_receiver_accepted_spans", attribute.String("transport", transport)))
			assert.Equal(t, int64(1), g.metric("otelcol_receiver_refused_spans", attribute.String("transport", transport)))
			assert.Equal(t, int64(1), g.metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "too_large")))
			assert.Equal(t, int64(1), g.metric("otelcol_receiver_tailsift_spans_received"))
		})
	}
}

// partialSuccess decodes an ExportTraceServiceResponse's partial_success.
func partialSuccess(t *testing.T, resp []byte) (int64, string) {
	t.Helper()
	r := ptraceotlp.NewExportResponse()
	require.NoError(t, r.UnmarshalProto(resp))
	return r.PartialSuccess().RejectedSpans(), r.PartialSuccess().ErrorMessage()
}

// heaviest records the queue weight (wire.Scan and tracebuf.QueueWeight,
// as the receiving gateway's buffer counts it) of the heaviest request a
// gateway received.
type heaviest struct {
	mu     sync.Mutex
	weight int64
}

func (h *heaviest) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	// The generated message pdata wraps, which encodes itself backwards
	// from the end of the buffer it is given.
	r, ok := req.(interface {
		SizeProto() int
		MarshalProto([]byte) int
	})
	if !ok {
		return nil, fmt.Errorf("a request of type %T this test cannot weigh", req)
	}
	buf := make([]byte, r.SizeProto())
	buf = buf[len(buf)-r.MarshalProto(buf):]
	var b wire.Batch
	if err := wire.Scan(buf, &b); err != nil {
		return nil, err
	}
	w := tracebuf.QueueWeight(len(buf), len(b.Spans), len(b.Scopes))
	h.mu.Lock()
	h.weight = max(h.weight, w)
	h.mu.Unlock()
	return next(ctx, req)
}

func (h *heaviest) get() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.weight
}

// A request of small spans within the request size limit but heavier than
// the queue, through a gateway of a tier whose members share its
// configuration: the part forwarded to the owner fits the owner's queue
// (which takes forwarded spans in whole, counted as its whole queue), and
// every span is forwarded or taken in, none refused.
func TestOverQueueRequestForwardedPartsFitPeerQueue(t *testing.T) {
	var peer heaviest
	gws, addrs := routertest.StartGatewaysWith(t, []grpc.ServerOption{grpc.UnaryInterceptor(peer.intercept)}, "127.0.0.1")
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	fitRequestsToQueue(cfg)
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	g := newRig(t, cfg, nil)

	var specs []spanSpec
	for n := range uint64(64) {
		for k := range uint64(160) {
			specs = append(specs, spanSpec{Trace: n + 1, Span: k + 2, Parent: 1})
		}
	}
	req := marshal(t, batch(specs...))
	require.Less(t, len(req), 1<<20, "within the request size limit")
	resp, err := g.grpcExport(context.Background(), req)
	require.NoError(t, err)
	assert.Empty(t, resp)
	require.Eventually(t, func() bool {
		return int64(gws.Count())+g.metric("otelcol_receiver_tailsift_spans_received") == int64(len(specs))
	}, 10*time.Second, 5*time.Millisecond, "every span forwarded or taken in")
	// Decided before the test ends: nothing to hand over at shutdown.
	g.advance(time.Minute)
	g.advance(time.Minute)
	require.Positive(t, peer.get(), "nothing forwarded: nothing to check")
	assert.LessOrEqual(t, peer.get(), int64(cfg.Buffer.MaxQueuedBytes),
		"a forwarded part weighing %d (%.2f× the peer's buffer.max_queued_bytes)", peer.get(), float64(peer.get())/float64(cfg.Buffer.MaxQueuedBytes))
}
