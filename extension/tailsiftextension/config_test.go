package tailsiftextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.ServerConfig.NetAddr.Endpoint = "0.0.0.0:23134"
	custom.Directory = "/var/lib/tailsift/store"
	custom.Retention = 30 * time.Minute
	custom.MaxBytes = 8 << 30
	custom.Compression = "s2"
	custom.MaxResponseBytes = 16 << 20
	custom.MaxConcurrentResponseBytes = 64 << 20
	custom.MaxConcurrentKeeps = 4

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "custom"), expected: custom},
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
	assert.Equal(t, "127.0.0.1:13134", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, "./data/store", cfg.Directory)
	assert.Equal(t, 10*time.Minute, cfg.Retention)
	assert.Equal(t, "zstd", cfg.Compression, "#11 asks for zstd; s2 is the cheaper option")
	assert.Equal(t, tracebuf.ByteSize(4<<20), cfg.MaxResponseBytes)
	assert.Equal(t, tracebuf.ByteSize(16<<20), cfg.MaxConcurrentResponseBytes)
	assert.Equal(t, 2, cfg.MaxConcurrentKeeps)
	require.NoError(t, cfg.Validate())
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		err    string
	}{
		{"empty directory", func(c *Config) { c.Directory = "" }, "directory: must not be empty"},
		{"zero retention", func(c *Config) { c.Retention = 0 }, "retention: must be between 1s and 168h, got 0s"},
		{"tiny max_bytes", func(c *Config) { c.MaxBytes = 1 << 20 }, "max_bytes: must be at least 16MiB, got 1048576"},
		{"unknown compression", func(c *Config) { c.Compression = "lz4" }, `compression: must be zstd, s2 or s2col, got "lz4"`},
		{"tiny max_response_bytes", func(c *Config) { c.MaxResponseBytes = 1000 }, "max_response_bytes: must be between 64KiB and 1GiB, got 1000"},
		{"huge max_response_bytes", func(c *Config) { c.MaxResponseBytes = 2 << 30 },
			"max_response_bytes: must be between 64KiB and 1GiB, got 2147483648\n" +
				"max_concurrent_response_bytes: must be between max_response_bytes (2147483648) and 64GiB, got 16777216"},
		{"max_concurrent_response_bytes under max_response_bytes", func(c *Config) { c.MaxConcurrentResponseBytes = 1 << 20 },
			"max_concurrent_response_bytes: must be between max_response_bytes (4194304) and 64GiB, got 1048576"},
		{"huge max_concurrent_response_bytes", func(c *Config) { c.MaxConcurrentResponseBytes = 128 << 30 },
			"max_concurrent_response_bytes: must be between max_response_bytes (4194304) and 64GiB, got 137438953472"},
		{"zero max_concurrent_keeps", func(c *Config) { c.MaxConcurrentKeeps = 0 }, "max_concurrent_keeps: must be between 1 and 64, got 0"},
		{"huge max_concurrent_keeps", func(c *Config) { c.MaxConcurrentKeeps = 65 }, "max_concurrent_keeps: must be between 1 and 64, got 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.modify(cfg)
			assert.EqualError(t, cfg.Validate(), tt.err)
		})
	}
	for _, comp := range []string{"zstd", "s2", "s2col"} {
		cfg := createDefaultConfig().(*Config)
		cfg.Compression = comp
		assert.NoError(t, cfg.Validate(), comp)
	}
}
