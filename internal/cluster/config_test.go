package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestConfigUnmarshal(t *testing.T) {
	cfg := NewDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"self":    "10.0.0.5:4317",
		"members": map[string]any{"dns": map[string]any{"hostname": "gw.svc", "port": 4317}},
		"drain":   "20s",
		"budget":  "shared",
		"handover": map[string]any{
			"enabled": true, "settle": "3s", "bytes_per_second": 1 << 20, "max_bytes": 8 << 20, "timeout": "4s",
		},
	}).Unmarshal(&cfg))
	require.NoError(t, confmap.Validate(&cfg))
	assert.Equal(t, "10.0.0.5:4317", cfg.Self)
	assert.Equal(t, "gw.svc", cfg.Members.DNS.Get().Hostname)
	assert.Equal(t, 20*time.Second, cfg.Drain)
	assert.Equal(t, BudgetShared, cfg.Budget)
	assert.Equal(t, HandoverConfig{Enabled: true, Settle: 3 * time.Second, BytesPerSecond: 1 << 20, MaxBytes: 8 << 20, Timeout: 4 * time.Second}, cfg.Handover)
}

func TestConfigInvalid(t *testing.T) {
	static := map[string]any{"static": []any{"10.0.0.5:4317"}}
	tests := []struct {
		name string
		yaml map[string]any
		err  string
	}{
		{name: "no self", yaml: map[string]any{"members": static}, err: "self: must be this gateway's host:port as the members block lists it"},
		{name: "self without port", yaml: map[string]any{"self": "10.0.0.5", "members": static}, err: `self: "10.0.0.5" is not host:port: address 10.0.0.5: missing port in address`},
		{name: "negative drain", yaml: map[string]any{"self": "a:1", "members": static, "drain": "-1s"}, err: "drain: must be between 0 and 10m, got -1s"},
		{name: "endpoint set", yaml: map[string]any{"self": "a:1", "members": static, "grpc": map[string]any{"endpoint": "b:2"}}, err: `grpc::endpoint: must be empty, the members block gives each member's address (got "b:2")`},
		{name: "slow handover", yaml: map[string]any{"self": "a:1", "members": static, "handover": map[string]any{"bytes_per_second": 10}}, err: "handover: bytes_per_second: must be at least 65536, got 10"},
		{name: "tiny handover", yaml: map[string]any{"self": "a:1", "members": static, "handover": map[string]any{"max_bytes": 10}}, err: "handover: max_bytes: must be at least 1048576, got 10"},
		{name: "budget", yaml: map[string]any{"self": "a:1", "members": static, "budget": "fleet"}, err: `budget: must be "local" or "shared", got "fleet"`},
		{name: "no handover timeout", yaml: map[string]any{"self": "a:1", "members": static, "handover": map[string]any{"timeout": "0s"}}, err: "handover: timeout: must be positive, got 0s"},
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
	t.Run("handover off is not checked", func(t *testing.T) {
		cfg := NewDefaultConfig()
		cfg.Self, cfg.Members.Static = "a:1", []string{"a:1"}
		cfg.Handover = HandoverConfig{}
		require.NoError(t, confmap.Validate(&cfg))
	})
}
