package tailsiftreceiver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// bigRequest is an export request under the default request size limits
// (a few hundred KB) whose queue weight, its bytes and its scan (136 B a
// span), is over a 1 MiB buffer.max_queued_bytes.
func bigRequest(t *testing.T, first uint64) ([]byte, int) {
	var specs []spanSpec
	for n := range uint64(8) {
		for k := range uint64(1000) {
			specs = append(specs, spanSpec{Trace: first + n, Span: k + 2, Parent: 1, Attrs: map[string]any{"pad": "0123456789abcdef"}})
		}
	}
	return marshal(t, batch(specs...)), len(specs)
}

// A request that weighs more than the whole queue can never be taken in:
// the receiver answers it at once with a permanent refusal that names the
// key to raise (INVALID_ARGUMENT, as a body over max_request_body_size;
// HTTP 413), without RetryInfo or Retry-After, and counts its spans as
// refused, reason too_large.
func TestRequestOverQueueBudgetIsRefusedPermanently(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	fitRequestsToQueue(cfg)
	g := newRig(t, cfg, nil)

	req, spans := bigRequest(t, 1)
	require.Less(t, len(req), 1<<20, "the bytes alone are within every limit")
	_, err := g.grpcExport(context.Background(), req)
	require.Error(t, err, "a request over buffer.max_queued_bytes was accepted over gRPC")
	st, _ := status.FromError(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "buffer.max_queued_bytes")
	for _, d := range st.Details() {
		_, retry := d.(*errdetails.RetryInfo)
		assert.False(t, retry, "no RetryInfo: a retry can never fit")
	}

	req, _ = bigRequest(t, 100)
	resp, body := g.httpExport(req, pbContentType)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "a request over buffer.max_queued_bytes over HTTP")
	assert.Empty(t, resp.Header.Get("Retry-After"))
	var s spb.Status
	require.NoError(t, proto.Unmarshal(body, &s))
	assert.Contains(t, s.GetMessage(), "buffer.max_queued_bytes")

	assert.Equal(t, int64(2*spans), g.metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "too_large")))
	assert.Zero(t, g.metric("otelcol_receiver_tailsift_spans_received"))
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
