package tailsiftreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/tailsift/tailsift/internal/cluster/clustertest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

func loadConfig(t *testing.T, id component.ID) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config), confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	t.Run("custom", func(t *testing.T) {
		cfg, err := loadConfig(t, component.NewIDWithName(metadata.Type, "custom"))
		require.NoError(t, err)
		g := cfg.Protocols.GRPC.Get()
		require.NotNil(t, g)
		assert.Equal(t, "127.0.0.1:14317", g.NetAddr.Endpoint)
		assert.Equal(t, 16, g.MaxRecvMsgSizeMiB)
		h := cfg.Protocols.HTTP.Get()
		require.NotNil(t, h)
		assert.Equal(t, "127.0.0.1:14318", h.ServerConfig.NetAddr.Endpoint)
		assert.Equal(t, SanitizedURLPath("/traces"), h.TracesURLPath)

		// The buffer block is the processor's, key for key.
		want := tracebuf.Config{
			Shards:     4,
			Completion: tracebuf.CompletionConfig{Quiet: 500 * time.Millisecond, MaxWait: 10 * time.Second, MaxSpans: 2000, MaxTraceBytes: 8 << 20},
			Buffer:     tracebuf.BufferConfig{MaxBytes: 1 << 30, MaxQueuedBytes: 32_000_000},
			DecisionCache: tracebuf.DecisionCacheConfig{
				KeptMaxBytes:      8 << 20,
				DroppedMaxEntries: 250_000,
			},
			Output: tracebuf.OutputConfig{BatchTimeout: 100 * time.Millisecond, BatchMaxSpans: 4096, AnnotateRoots: true, ShutdownTimeout: 20 * time.Second},
			Rescue: tracebuf.RescueConfig{Window: 45 * time.Second, MaxBytes: 64 << 20},
			Policies: []sampling.PolicyConfig{
				sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR", "UNSET"}}),
				sampling.NewPolicyConfig("slow", "latency", &sampling.LatencyConfig{ThresholdMs: 500, UpperThresholdMs: 60000}),
				sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 1}),
			},
			Budget: sampling.BudgetConfig{
				TracesPerSecond: 200,
				Classes: []sampling.BudgetClass{
					{Name: "errors", Policies: []string{"errors"}, NeverDrop: true},
					{Name: "rest", Policies: []string{"slow", "baseline"}},
				},
			},
			Cluster: clustertest.CustomConfig(),
		}
		assert.Equal(t, want, cfg.bufferConfig)

		// The same block, unchanged, configures the processor identically.
		cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
		require.NoError(t, err)
		sub, err := cm.Sub("tailsift/custom")
		require.NoError(t, err)
		block := sub.ToStringMap()
		delete(block, "protocols")
		pcfg := tailsiftprocessor.NewFactory().CreateDefaultConfig()
		require.NoError(t, confmap.NewFromStringMap(block).Unmarshal(pcfg))
		assert.Equal(t, &want, pcfg)
	})
	t.Run("grpc_only", func(t *testing.T) {
		cfg, err := loadConfig(t, component.NewIDWithName(metadata.Type, "grpc_only"))
		require.NoError(t, err)
		require.True(t, cfg.Protocols.GRPC.HasValue())
		assert.False(t, cfg.Protocols.HTTP.HasValue())
		assert.Equal(t, defaultGRPCEndpoint, cfg.Protocols.GRPC.Get().NetAddr.Endpoint)
		assert.Equal(t, tracebuf.ByteSize(2<<20), cfg.Buffer.MaxBytes)
		def := tailsiftprocessor.NewFactory().CreateDefaultConfig().(*tailsiftprocessor.Config)
		assert.Equal(t, def.Completion, cfg.Completion, "buffer defaults are the processor's")
		assert.Equal(t, def.Policies, cfg.Policies)
	})
	t.Run("no protocol", func(t *testing.T) {
		_, err := loadConfig(t, component.NewID(metadata.Type))
		require.EqualError(t, err, "protocols: must specify at least one of grpc or http")
	})
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	def := tailsiftprocessor.NewFactory().CreateDefaultConfig().(*tailsiftprocessor.Config)
	assert.Equal(t, *def, cfg.bufferConfig)
	// Like the otlp receiver, the protocols are off until named in YAML.
	assert.False(t, cfg.Protocols.GRPC.HasValue())
	assert.False(t, cfg.Protocols.HTTP.HasValue())
	// Named, they get the otlp receiver's defaults.
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"grpc": nil, "http": nil},
	}).Unmarshal(cfg))
	assert.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, defaultGRPCEndpoint, cfg.Protocols.GRPC.Get().NetAddr.Endpoint)
	assert.Equal(t, defaultHTTPEndpoint, cfg.Protocols.HTTP.Get().ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, SanitizedURLPath(defaultTracesURLPath), cfg.Protocols.HTTP.Get().TracesURLPath)
}

// TestInvalidConfig gives the processor's errors, naming the keys as in the
// receiver's YAML.
func TestInvalidConfig(t *testing.T) {
	grpcOn := map[string]any{"grpc": nil}
	tests := []struct {
		name string
		yaml map[string]any
		err  string // the exact error
	}{
		{
			name: "negative shards",
			yaml: map[string]any{"shards": -1},
			err:  "shards: must be between 0 (GOMAXPROCS) and 4096, got -1",
		},
		{
			name: "zero quiet",
			yaml: map[string]any{"completion": map[string]any{"quiet": "0s"}},
			err:  "completion: quiet: must be positive, got 0s",
		},
		{
			name: "max_wait below quiet",
			yaml: map[string]any{"completion": map[string]any{"quiet": "5s", "max_wait": "1s"}},
			err:  "completion: max_wait: must be at least quiet (5s), got 1s",
		},
		{
			name: "zero max_spans",
			yaml: map[string]any{"completion": map[string]any{"max_spans": 0}},
			err:  "completion: max_spans: must be positive, got 0",
		},
		{
			name: "tiny buffer",
			yaml: map[string]any{"buffer": map[string]any{"max_bytes": "1KiB"}},
			err:  "buffer: max_bytes: must be at least 1MiB, got 1024",
		},
		{
			name: "tiny queue",
			yaml: map[string]any{"buffer": map[string]any{"max_queued_bytes": 10}},
			err:  "buffer: max_queued_bytes: must be at least 1MiB, got 10",
		},
		{
			name: "tiny kept cache",
			yaml: map[string]any{"decision_cache": map[string]any{"kept_max_bytes": "1KB"}},
			err:  "decision_cache: kept_max_bytes: must be at least 64KiB, got 1000",
		},
		{
			name: "negative dropped entries",
			yaml: map[string]any{"decision_cache": map[string]any{"dropped_max_entries": -5}},
			err:  "decision_cache: dropped_max_entries: must not be negative, got -5",
		},
		{
			name: "negative batch timeout",
			yaml: map[string]any{"output": map[string]any{"batch_timeout": "-1s"}},
			err:  "output: batch_timeout: must be between 0 and 1m, got -1s",
		},
		{
			name: "zero batch size",
			yaml: map[string]any{"output": map[string]any{"batch_max_spans": 0}},
			err:  "output: batch_max_spans: must be positive, got 0",
		},
		{
			name: "zero shutdown_timeout",
			yaml: map[string]any{"output": map[string]any{"shutdown_timeout": "0s"}},
			err:  "output: shutdown_timeout: must be positive and at most 10m, got 0s",
		},
		{
			name: "huge shutdown_timeout",
			yaml: map[string]any{"output": map[string]any{"shutdown_timeout": "1h"}},
			err:  "output: shutdown_timeout: must be positive and at most 10m, got 1h0m0s",
		},
		{
			name: "negative rescue window",
			yaml: map[string]any{"rescue": map[string]any{"window": "-1s"}},
			err:  "rescue: window: must be between 0 (off) and 10m, got -1s",
		},
		{
			name: "rescue budget too small",
			yaml: map[string]any{"rescue": map[string]any{"window": "30s", "max_bytes": "100KiB"}},
			err:  "rescue: max_bytes: must be at least 1MiB when window is set, got 102400",
		},
		{
			name: "no policies",
			yaml: map[string]any{"policies": []any{}},
			err:  "policies: at least one policy is required",
		},
		{
			name: "duplicate policy names",
			yaml: map[string]any{"policies": []any{
				map[string]any{"name": "a", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"ERROR"}}},
				map[string]any{"name": "a", "type": "latency", "latency": map[string]any{"threshold_ms": 5}},
			}},
			err: `policies::1::name: "a" is already used by policies::0`,
		},
		{
			name: "bad status code",
			yaml: map[string]any{"policies": []any{
				map[string]any{"name": "e", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"FATAL"}}},
			}},
			err: `policies::0: status_code: status_codes::0: unknown status code "FATAL" (want OK, ERROR or UNSET)`,
		},
		{
			name: "percentage out of range",
			yaml: map[string]any{"policies": []any{
				map[string]any{"name": "p", "type": "probabilistic", "probabilistic": map[string]any{"sampling_percentage": 101}},
			}},
			err: "policies::0: probabilistic: sampling_percentage: must be in (0, 100], got 101",
		},
		{
			name: "budget class naming no policy",
			yaml: map[string]any{"budget": map[string]any{"traces_per_second": 100, "classes": []any{
				map[string]any{"name": "important", "policies": []any{"errors", "slow"}},
				map[string]any{"name": "rest", "policies": []any{"baselin"}},
			}}},
			err: `budget::classes::1::policies::0: no policy named "baselin"`,
		},
		{
			name: "budget with both rates",
			yaml: map[string]any{"budget": map[string]any{"traces_per_second": 100, "spans_per_second": 1000}},
			err:  "budget: set only one of spans_per_second and traces_per_second",
		},
		{
			name: "bad grpc server setting",
			yaml: map[string]any{"protocols": map[string]any{"grpc": map[string]any{"read_buffer_size": -1}}},
			err:  "protocols::grpc: invalid read_buffer_size value: -1",
		},
		{
			name: "no protocol",
			yaml: map[string]any{"protocols": map[string]any{}},
			err:  "protocols: must specify at least one of grpc or http",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.yaml["protocols"]; !ok {
				tt.yaml["protocols"] = grpcOn
			}
			cfg := createDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(cfg))
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.Equal(t, tt.err, err.Error())
		})
	}
}

func TestUnmarshalErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml map[string]any
		err  string // a part of the error
	}{
		{
			name: "unknown policy type",
			yaml: map[string]any{"policies": []any{map[string]any{"name": "x", "type": "nope"}}},
			err:  `type: unknown policy type "nope" (known: ` + strings.Join(sampling.Types(), ", ") + `)`,
		},
		{
			name: "bad byte size",
			yaml: map[string]any{"buffer": map[string]any{"max_bytes": "lots"}},
			err:  `invalid byte size "lots"`,
		},
		{
			name: "unknown top-level key",
			yaml: map[string]any{"shard": 3},
			err:  "has invalid keys: shard",
		},
		{
			name: "unknown protocol",
			yaml: map[string]any{"protocols": map[string]any{"thrift": nil}},
			err:  "has invalid keys: thrift",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := confmap.NewFromStringMap(tt.yaml).Unmarshal(createDefaultConfig())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

// A marshaled configuration (print-config) has the buffer block at the top
// level and loads back to the same configuration.
func TestMarshalRoundTrip(t *testing.T) {
	cfg, err := loadConfig(t, component.NewIDWithName(metadata.Type, "custom"))
	require.NoError(t, err)
	conf := confmap.New()
	require.NoError(t, conf.Marshal(map[string]component.Config{"r": cfg}))
	sub, err := conf.Sub("r")
	require.NoError(t, err)
	for _, k := range []string{"protocols", "shards", "completion", "buffer", "decision_cache", "policies"} {
		assert.True(t, sub.IsSet(k), k)
	}
	assert.Equal(t, 4, sub.Get("shards"))
}
