package tailsiftreceiver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/wire"
)

// heavyRequest is an export request of error traces within a 2 MiB
// request size limit (970 KB) whose queue weight, its bytes and its scan
// (136 B a span), is over a 2 MiB buffer.max_queued_bytes: 16 traces of
// 600 spans of about 130 bytes, each trace with an error on one span.
func heavyRequest(t *testing.T, first uint64) ([]byte, []uint64, int) {
	var specs []spanSpec
	var traces []uint64
	for n := range uint64(16) {
		traces = append(traces, first+n)
		specs = append(specs, spanSpec{Trace: first + n, Span: 1})
		for k := range uint64(599) {
			st := ptrace.StatusCodeUnset
			if k == 300 {
				st = ptrace.StatusCodeError
			}
			specs = append(specs, spanSpec{Trace: first + n, Span: k + 2, Parent: 1, Status: st, Attrs: map[string]any{"pad": "0123456789abcdef0123456789"}})
		}
	}
	return marshal(t, batch(specs...)), traces, len(specs)
}

// A request that weighs more than the whole of buffer.max_queued_bytes but
// is within the request size limit is a request the client may send: it
// is taken in, in pieces each within the budget, and its error traces are
// decided and kept whole, over gRPC (whose pooled receive buffer counts at
// its power-of-two capacity, 2 MiB for this request) and over HTTP alike.
// Before, both were refused permanently (INVALID_ARGUMENT, 413) and the
// client dropped them: 19 200 spans refused too_large, none kept.
func TestRequestOverQueueBudgetIsTakenInPieces(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 2 << 20
	fitRequestsToQueue(cfg)
	g := newRig(t, cfg, nil)

	req, grpcTraces, spans := heavyRequest(t, 1)
	require.Less(t, len(req), 2<<20, "the bytes alone are within every limit")
	var b wire.Batch
	require.NoError(t, wire.Scan(req, &b))
	weight := tracebuf.QueueWeight(len(req), len(b.Spans), len(b.Scopes))
	require.Greater(t, weight, int64(cfg.Buffer.MaxQueuedBytes), "the request weighs more than the queue")

	resp, err := g.grpcExport(context.Background(), req)
	assert.NoError(t, err, "a request of %d bytes weighing %d (%.2f× buffer.max_queued_bytes) over gRPC",
		len(req), weight, float64(weight)/float64(cfg.Buffer.MaxQueuedBytes))
	assert.Empty(t, resp, "full success")

	req, httpTraces, _ := heavyRequest(t, 100)
	hresp, body := g.httpExport(req, pbContentType)
	assert.Equal(t, http.StatusOK, hresp.StatusCode, "a request weighing more than the queue over HTTP: %s", body)

	assert.Zero(t, g.metric("otelcol_receiver_tailsift_spans_refused"), "no span refused")
	assert.Equal(t, int64(2*spans), g.metric("otelcol_receiver_tailsift_spans_received"))
	g.advance(time.Minute)
	g.advance(time.Minute)
	for _, n := range append(grpcTraces, httpTraces...) {
		assert.Len(t, g.spansOf(n), spans/16, "error trace %d kept whole", n)
	}
}

// A receiver whose request size limit is more than buffer.max_queued_bytes
// would take requests it can never queue: the configuration is refused,
// naming both keys.
func TestRequestLimitOverQueueBudgetIsAConfigError(t *testing.T) {
	tests := []struct {
		name string
		yaml map[string]any
		err  string
	}{
		{
			name: "http default limit",
			yaml: map[string]any{"protocols": map[string]any{"http": nil}, "buffer": map[string]any{"max_queued_bytes": "8MiB"}},
			err:  "protocols::http::max_request_body_size: 20971520 bytes (the default) is more than buffer::max_queued_bytes (8388608)",
		},
		{
			name: "grpc limit",
			yaml: map[string]any{"protocols": map[string]any{"grpc": map[string]any{"max_recv_msg_size_mib": 16}}, "buffer": map[string]any{"max_queued_bytes": "8MiB"}},
			err:  "protocols::grpc::max_recv_msg_size_mib: 16777216 bytes is more than buffer::max_queued_bytes (8388608)",
		},
		{
			name: "grpc default limit",
			yaml: map[string]any{"protocols": map[string]any{"grpc": nil}, "buffer": map[string]any{"max_queued_bytes": "2MiB"}},
			err:  "protocols::grpc::max_recv_msg_size_mib: 4194304 bytes (gRPC's default) is more than buffer::max_queued_bytes (2097152)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(cfg))
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.err), err.Error())
		})
	}
	t.Run("limits within the queue", func(t *testing.T) {
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, confmap.NewFromStringMap(map[string]any{
			"protocols": map[string]any{"grpc": nil, "http": map[string]any{"max_request_body_size": 8 << 20}},
			"buffer":    map[string]any{"max_queued_bytes": "8MiB"},
		}).Unmarshal(cfg))
		assert.NoError(t, confmap.Validate(cfg))
	})
}

// fitRequestsToQueue lowers both protocols' request size limits to
// buffer.max_queued_bytes, as a valid configuration with a small queue has
// them.
func fitRequestsToQueue(cfg *Config) {
	q := int64(cfg.Buffer.MaxQueuedBytes)
	if cfg.Protocols.GRPC.HasValue() {
		cfg.Protocols.GRPC.Get().MaxRecvMsgSizeMiB = int(q >> 20)
	}
	if cfg.Protocols.HTTP.HasValue() {
		cfg.Protocols.HTTP.Get().ServerConfig.MaxRequestBodySize = q
	}
}

// What the buffer answers for a request heavier than the queue, taken in
// pieces, becomes: a partial success when spans too large were refused and
// the others taken in (rejected_spans counts those refused, bad IDs
// included); a permanent refusal (413) when its only span is too large; a
// retryable refusal, with the spans taken before counted as accepted, when
// a piece found no room.
func TestClassifyPieces(t *testing.T) {
	partial := classify(&tracebuf.TooLargeError{Spans: 2, Weight: 3 << 20, Max: 2 << 20, Taken: 500, Invalid: 3})
	assert.Nil(t, partial.st)
	assert.Equal(t, 5, partial.rejected)
	assert.Contains(t, partial.message, "2 spans each need more bytes of queue")
	assert.Contains(t, partial.message, "the other 500 spans of the request were taken in")

	whole := classify(&tracebuf.TooLargeError{Spans: 1, Weight: 3 << 20, Max: 2 << 20})
	require.NotNil(t, whole.st)
	assert.Equal(t, codes.InvalidArgument, whole.st.Code())
	assert.Equal(t, http.StatusRequestEntityTooLarge, whole.httpCode)
	assert.Contains(t, whole.st.Message(), "a span needs 3145728 bytes")

	partWay := classify(&tracebuf.RefusedError{Spans: 700, Taken: 300, Cause: context.DeadlineExceeded})
	require.NotNil(t, partWay.st)
	assert.Equal(t, codes.Unavailable, partWay.st.Code())
	_, retry := retryAfter(partWay.st)
	assert.True(t, retry, "a retry delay")
	assert.Equal(t, 300, partWay.taken)
	assert.Contains(t, partWay.st.Message(), "300 spans taken in, the other 700 refused")
}
