package tailsiftprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/tailsift/tailsift/internal/cluster/clustertest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := &Config{
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
	bytesAsNumber := createDefaultConfig().(*Config)
	bytesAsNumber.Buffer.MaxBytes = 2 << 20

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "custom"), expected: custom},
		{id: component.NewIDWithName(metadata.Type, "bytes_as_number"), expected: bytesAsNumber},
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

func TestInvalidConfig(t *testing.T) {
	for _, tt := range tracebuftest.InvalidConfigs() {
		t.Run(tt.Name, func(t *testing.T) {
			cfg := createDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.YAML).Unmarshal(cfg))
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.Equal(t, tt.Err, err.Error())
		})
	}
}

func TestUnmarshalErrorsNameTheKey(t *testing.T) {
	for _, tt := range tracebuftest.UndecodableConfigs() {
		t.Run(tt.Name, func(t *testing.T) {
			err := confmap.NewFromStringMap(tt.YAML).Unmarshal(createDefaultConfig())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.Err)
		})
	}
}
