package tailsiftreceiver

import (
	"path/filepath"
	"testing"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

func loadConfig(t *testing.T, id component.ID) (*Config, error) {
	t.Helper()
	cfg, err := tracebuftest.LoadConfig(t, NewFactory(), id)
	return cfg.(*Config), err
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
		want := tracebuftest.CustomConfig()
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
// receiver's YAML, and the receiver's own for its protocols.
func TestInvalidConfig(t *testing.T) {
	tests := append(tracebuftest.InvalidConfigs(),
		tracebuftest.BadConfig{
			Name: "bad grpc server setting",
			YAML: map[string]any{"protocols": map[string]any{"grpc": map[string]any{"read_buffer_size": -1}}},
			Err:  "protocols::grpc: invalid read_buffer_size value: -1",
		},
		tracebuftest.BadConfig{
			Name: "no protocol",
			YAML: map[string]any{"protocols": map[string]any{}},
			Err:  "protocols: must specify at least one of grpc or http",
		},
	)
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			if _, ok := tt.YAML["protocols"]; !ok {
				tt.YAML["protocols"] = map[string]any{"grpc": nil}
			}
			tt.AssertInvalid(t, createDefaultConfig())
		})
	}
}

func TestUnmarshalErrorsNameTheKey(t *testing.T) {
	tests := append(tracebuftest.UndecodableConfigs(), tracebuftest.BadConfig{
		Name: "unknown protocol",
		YAML: map[string]any{"protocols": map[string]any{"thrift": nil}},
		Err:  "has invalid keys: thrift",
	})
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			tt.AssertUndecodable(t, createDefaultConfig())
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
