package tailsiftexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/router"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	static := createDefaultConfig().(*Config)
	static.Members.Static = []string{"10.0.0.5:4317", "10.0.0.6:4317"}

	dns := createDefaultConfig().(*Config)
	*dns.Members.DNS.GetOrInsertDefault() = membership.DNSConfig{
		Hostname: "gateways.tailsift.svc.cluster.local", Port: 4317,
		Interval: 10 * time.Second, Timeout: time.Second, Server: "10.96.0.10:53",
	}
	dns.GRPC.Compression = configcompression.TypeSnappy
	dns.GRPC.TLS.Insecure = true
	dns.Failover = router.FailoverConfig{Attempts: 3, Backoff: 50 * time.Millisecond, ProbeInterval: 2 * time.Second, Timeouts: 3}
	dns.Timeout.Timeout = 10 * time.Second
	dns.Queue.Get().Sizer = exporterhelper.RequestSizerTypeRequests
	dns.Queue.Get().QueueSize = 5000
	dns.Queue.Get().NumConsumers = 4
	dns.Retry.MaxElapsedTime = time.Minute
	dns.MaxRequestBytes = 16 << 20

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: static},
		{id: component.NewIDWithName(metadata.Type, "dns"), expected: dns},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, configcompression.TypeZstd, cfg.GRPC.Compression, "gateways get zstd")
	assert.True(t, cfg.Queue.HasValue(), "each member has a sending queue")
	require.True(t, cfg.Queue.Get().Batch.HasValue(), "each member batches across requests")
	b := cfg.Queue.Get().Batch.Get()
	assert.Equal(t, exporterhelper.RequestSizerTypeItems, b.Sizer)
	assert.Equal(t, 200*time.Millisecond, b.FlushTimeout)
	assert.Equal(t, []int64{2048, 2048}, []int64{b.MinSize, b.MaxSize})
	assert.Equal(t, 512*1024, cfg.GRPC.WriteBufferSize)
	assert.Equal(t, 2, cfg.Failover.Timeouts, "a member is down after two sends in a row unanswered")
	// Each member's queue is bounded in bytes, not in requests: a queue of
	// 1000 batches could hold 1000 × max_request_bytes.
	assert.Equal(t, exporterhelper.RequestSizerTypeBytes, cfg.Queue.Get().Sizer)
	assert.Equal(t, int64(64<<20), cfg.Queue.Get().QueueSize)
	assert.Equal(t, 3584*1024, cfg.MaxRequestBytes, "3.5 MiB, under gRPC's default 4 MiB receive limit")

	off := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"sending_queue": map[string]any{"batch": map[string]any{"enabled": false}},
	}).Unmarshal(off))
	assert.False(t, off.Queue.Get().Batch.HasValue(), "batch::enabled: false turns batching off")

	// A queue bounded in bytes (docs/scale-out.md) keeps batching by items.
	byBytes := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"members":       map[string]any{"static": []string{"127.0.0.1:4317"}},
		"sending_queue": map[string]any{"sizer": "bytes", "queue_size": 64 << 20},
	}).Unmarshal(byBytes))
	require.NoError(t, confmap.Validate(byBytes))
	assert.Equal(t, exporterhelper.RequestSizerTypeBytes, byBytes.Queue.Get().Sizer)
	assert.Equal(t, exporterhelper.RequestSizerTypeItems, byBytes.Queue.Get().Batch.Get().Sizer)
	assert.True(t, cfg.Retry.Enabled)
	require.EqualError(t, confmap.Validate(cfg), "members: static or dns: one must be set")
}

func TestInvalidConfig(t *testing.T) {
	static := map[string]any{"static": []any{"10.0.0.5:4317"}}
	tests := []struct {
		name string
		yaml map[string]any
		err  string // the exact error
	}{
		{
			name: "no members",
			yaml: map[string]any{},
			err:  "members: static or dns: one must be set",
		},
		{
			name: "bad static member",
			yaml: map[string]any{"members": map[string]any{"static": []any{"10.0.0.5"}}},
			err:  `members: static[0]: "10.0.0.5" is not host:port: address 10.0.0.5: missing port in address`,
		},
		{
			name: "dns without port",
			yaml: map[string]any{"members": map[string]any{"dns": map[string]any{"hostname": "gw"}}},
			err:  "members::dns: port: must be between 1 and 65535, got 0",
		},
		{
			name: "endpoint set",
			yaml: map[string]any{"members": static, "grpc": map[string]any{"endpoint": "10.0.0.9:4317"}},
			err:  `grpc::endpoint: must be empty, the members block gives each member's address (got "10.0.0.9:4317")`,
		},
		{
			name: "zero attempts",
			yaml: map[string]any{"members": static, "failover": map[string]any{"attempts": 0}},
			err:  "failover: attempts: must be at least 1, got 0",
		},
		{
			name: "negative backoff",
			yaml: map[string]any{"members": static, "failover": map[string]any{"backoff": "-1s"}},
			err:  "failover: backoff: must not be negative, got -1s",
		},
		{
			name: "zero probe interval",
			yaml: map[string]any{"members": static, "failover": map[string]any{"probe_interval": "0s"}},
			err:  "failover: probe_interval: must be positive, got 0s",
		},
		{
			name: "negative timeouts",
			yaml: map[string]any{"members": static, "failover": map[string]any{"timeouts": -1}},
			err:  "failover: timeouts: must not be negative, got -1",
		},
		{
			name: "no send timeout",
			yaml: map[string]any{"members": static, "timeout": "0s"},
			err:  "timeout: must be positive (a send to a member that never answers would wait for ever), got 0s",
		},
		{
			name: "negative max_request_bytes",
			yaml: map[string]any{"members": static, "max_request_bytes": -1},
			err:  "max_request_bytes: must not be negative (0 is no cap), got -1",
		},
		{
			name: "batch by bytes",
			yaml: map[string]any{"members": static, "sending_queue": map[string]any{"batch": map[string]any{"sizer": "bytes"}}},
			err: `sending_queue::batch::sizer: only items is supported, got "bytes" ` +
				`(a batch block takes sending_queue::sizer when it sets none: add sizer: items to it)`,
		},
		{
			// exporterhelper gives a batch block without a sizer the queue's.
			name: "queue in bytes written out, batch block without a sizer",
			yaml: map[string]any{"members": static, "sending_queue": map[string]any{
				"sizer": "bytes", "batch": map[string]any{"flush_timeout": "100ms"}}},
			err: `sending_queue::batch::sizer: only items is supported, got "bytes" ` +
				`(a batch block takes sending_queue::sizer when it sets none: add sizer: items to it)`,
		},
		{
			// A count of requests, written as for other exporters, against
			// the default byte sizer.
			name: "queue_size as requests",
			yaml: map[string]any{"members": static, "sending_queue": map[string]any{"queue_size": 2000}},
			err: "sending_queue::queue_size: in bytes (sending_queue::sizer is bytes, the default) it must hold one request of " +
				"max_request_bytes (3670016), got 2000; for a count of requests set sizer: requests",
		},
		{
			// The same without a cap was accepted, and the queue refused
			// every request larger than 5000 bytes, retryably, for ever.
			name: "queue_size as requests, no cap",
			yaml: map[string]any{"members": static, "max_request_bytes": 0, "sending_queue": map[string]any{"queue_size": 5000}},
			err: "sending_queue::queue_size: in bytes (sending_queue::sizer is bytes, the default) with no max_request_bytes it must be at least 4194304, " +
				"a request of the otlp receiver's default size limit, got 5000; for a count of requests set sizer: requests",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(cfg))
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.Equal(t, tt.err, err.Error())
		})
	}
}
