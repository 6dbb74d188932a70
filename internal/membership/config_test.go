package membership

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestConfigUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		yaml map[string]any
		want func(*Config)
	}{
		{
			name: "static",
			yaml: map[string]any{"static": []any{"10.0.0.5:4317", "10.0.0.6:4317"}},
			want: func(c *Config) { c.Static = []string{"10.0.0.5:4317", "10.0.0.6:4317"} },
		},
		{
			name: "dns with defaults",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw.svc", "port": 4317}},
			want: func(c *Config) {
				d := c.DNS.GetOrInsertDefault()
				d.Hostname, d.Port = "gw.svc", 4317
			},
		},
		{
			name: "dns with everything",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw.svc", "port": 4317, "interval": "2s", "timeout": "300ms", "server": "127.0.0.1:53"}},
			want: func(c *Config) {
				d := c.DNS.GetOrInsertDefault()
				*d = DNSConfig{Hostname: "gw.svc", Port: 4317, Interval: 2 * time.Second, Timeout: 300 * time.Millisecond, Server: "127.0.0.1:53"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(&got))
			require.NoError(t, confmap.Validate(&got))
			want := NewDefaultConfig()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml map[string]any
		err  string
	}{
		{name: "empty", yaml: map[string]any{}, err: "static or dns: one must be set"},
		{
			name: "both",
			yaml: map[string]any{"static": []any{"a:1"}, "dns": map[string]any{"hostname": "gw", "port": 1}},
			err:  "static and dns: set one, not both",
		},
		{name: "no port", yaml: map[string]any{"static": []any{"a:1", "b"}}, err: `static[1]: "b" is not host:port: address b: missing port in address`},
		{name: "bad port", yaml: map[string]any{"static": []any{"a:http"}}, err: `static[0]: "a:http": port must be a number between 1 and 65535`},
		{name: "no host", yaml: map[string]any{"static": []any{":4317"}}, err: `static[0]: ":4317" has no host`},
		{name: "dns without hostname", yaml: map[string]any{"dns": map[string]any{"port": 4317}}, err: "dns: hostname: must not be empty"},
		{name: "dns without port", yaml: map[string]any{"dns": map[string]any{"hostname": "gw"}}, err: "dns: port: must be between 1 and 65535, got 0"},
		{
			name: "dns zero interval",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw", "port": 1, "interval": "0s"}},
			err:  "dns: interval: must be at least 10ms, got 0s",
		},
		{
			name: "dns zero timeout",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw", "port": 1, "timeout": "0s"}},
			err:  "dns: timeout: must be positive, got 0s",
		},
		{
			name: "dns bad server",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw", "port": 1, "server": "10.0.0.1"}},
			err:  `dns: server: "10.0.0.1" is not host:port: address 10.0.0.1: missing port in address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(&cfg))
			err := confmap.Validate(&cfg)
			require.Error(t, err)
			assert.Equal(t, tt.err, err.Error())
		})
	}
}
