package tailsiftprocessor

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
			name: "policy without name",
			yaml: map[string]any{"policies": []any{
				map[string]any{"type": "latency", "latency": map[string]any{"threshold_ms": 5}},
			}},
			err: "policies::0: name: must not be empty",
		},
		{
			name: "bad status code",
			yaml: map[string]any{"policies": []any{
				map[string]any{"name": "e", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"FATAL"}}},
			}},
			err: `policies::0: status_code: status_codes::0: unknown status code "FATAL" (want OK, ERROR or UNSET)`,
		},
		{
			name: "negative latency",
			yaml: map[string]any{"policies": []any{
				map[string]any{"name": "s", "type": "latency", "latency": map[string]any{"threshold_ms": -1}},
			}},
			err: "policies::0: latency: threshold_ms: must not be negative",
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
			name: "cluster without self",
			yaml: map[string]any{"cluster": map[string]any{"members": map[string]any{"static": []any{"10.0.0.5:4317"}}}},
			err:  "cluster: self: must be this gateway's host:port as the members block lists it",
		},
		{
			name: "cluster without members",
			yaml: map[string]any{"cluster": map[string]any{"self": "10.0.0.5:4317"}},
			err:  "cluster: members: static or dns: one must be set",
		},
		{
			name: "cluster handover without settle",
			yaml: map[string]any{"cluster": map[string]any{
				"self": "10.0.0.5:4317", "members": map[string]any{"static": []any{"10.0.0.5:4317"}},
				"handover": map[string]any{"settle": "0s"},
			}},
			err: "cluster: handover: settle: must be positive, got 0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
			name: "unknown key in policy",
			yaml: map[string]any{"policies": []any{map[string]any{"name": "x", "type": "latency", "lantecy": map[string]any{}}}},
			err:  `unknown key "lantecy"`,
		},
		{
			name: "unknown key in policy settings",
			yaml: map[string]any{"policies": []any{map[string]any{"name": "x", "type": "latency", "latency": map[string]any{"treshold_ms": 5}}}},
			err:  "'policies[0]' latency: decoding failed due to the following error(s):\n\n'sampling.LatencyConfig' has invalid keys: treshold_ms",
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := confmap.NewFromStringMap(tt.yaml).Unmarshal(createDefaultConfig())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}
