package tailsiftreceiver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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
