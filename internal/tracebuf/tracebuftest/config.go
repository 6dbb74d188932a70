// Package tracebuftest holds test fixtures shared by the components built on
// the trace buffer (the tailsift processor and receiver): the tailsift blocks
// their configurations share, and the errors those must give.
package tracebuftest

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
	"github.com/tailsift/tailsift/sampling"
)

// BadConfig is a tailsift block (as YAML decoded into a map) that loading
// refuses, and the error it must give.
type BadConfig struct {
	Name string
	YAML map[string]any
	Err  string
}

// InvalidConfigs are blocks that decode but that Validate refuses; Err is
// the exact error, naming the YAML key. Each call returns fresh maps, which
// a caller may add its own keys to.
func InvalidConfigs() []BadConfig {
	return []BadConfig{
		{
			Name: "negative shards",
			YAML: map[string]any{"shards": -1},
			Err:  "shards: must be between 0 (GOMAXPROCS) and 4096, got -1",
		},
		{
			Name: "zero quiet",
			YAML: map[string]any{"completion": map[string]any{"quiet": "0s"}},
			Err:  "completion: quiet: must be positive, got 0s",
		},
		{
			Name: "max_wait below quiet",
			YAML: map[string]any{"completion": map[string]any{"quiet": "5s", "max_wait": "1s"}},
			Err:  "completion: max_wait: must be at least quiet (5s), got 1s",
		},
		{
			Name: "max_wait past a day",
			YAML: map[string]any{"completion": map[string]any{"max_wait": "2562047h"}},
			Err:  "completion: max_wait: must be at most 24h0m0s, got 2562047h0m0s",
		},
		{
			Name: "learn quantile",
			YAML: map[string]any{"completion": map[string]any{"learn": map[string]any{"quantile": 1.5}}},
			Err:  "completion::learn: quantile: must be in [0.5, 1), got 1.5",
		},
		{
			Name: "zero max_spans",
			YAML: map[string]any{"completion": map[string]any{"max_spans": 0}},
			Err:  "completion: max_spans: must be positive, got 0",
		},
		{
			Name: "tiny buffer",
			YAML: map[string]any{"buffer": map[string]any{"max_bytes": "1KiB"}},
			Err:  "buffer: max_bytes: must be at least 1MiB, got 1024",
		},
		{
			Name: "tiny queue",
			YAML: map[string]any{"buffer": map[string]any{"max_queued_bytes": 10}},
			Err:  "buffer: max_queued_bytes: must be at least 1MiB, got 10",
		},
		{
			Name: "tiny kept cache",
			YAML: map[string]any{"decision_cache": map[string]any{"kept_max_bytes": "1KB"}},
			Err:  "decision_cache: kept_max_bytes: must be at least 64KiB, got 1000",
		},
		{
			Name: "negative dropped entries",
			YAML: map[string]any{"decision_cache": map[string]any{"dropped_max_entries": -5}},
			Err:  "decision_cache: dropped_max_entries: must not be negative, got -5",
		},
		{
			Name: "negative batch timeout",
			YAML: map[string]any{"output": map[string]any{"batch_timeout": "-1s"}},
			Err:  "output: batch_timeout: must be between 0 and 1m, got -1s",
		},
		{
			Name: "zero batch size",
			YAML: map[string]any{"output": map[string]any{"batch_max_spans": 0}},
			Err:  "output: batch_max_spans: must be positive, got 0",
		},
		{
			Name: "zero shutdown_timeout",
			YAML: map[string]any{"output": map[string]any{"shutdown_timeout": "0s"}},
			Err:  "output: shutdown_timeout: must be positive and at most 10m, got 0s",
		},
		{
			Name: "huge shutdown_timeout",
			YAML: map[string]any{"output": map[string]any{"shutdown_timeout": "1h"}},
			Err:  "output: shutdown_timeout: must be positive and at most 10m, got 1h0m0s",
		},
		{
			Name: "negative rescue window",
			YAML: map[string]any{"rescue": map[string]any{"window": "-1s"}},
			Err:  "rescue: window: must be between 0 (off) and 10m, got -1s",
		},
		{
			Name: "rescue budget too small",
			YAML: map[string]any{"rescue": map[string]any{"window": "30s", "max_bytes": "100KiB"}},
			Err:  "rescue: max_bytes: must be at least 1MiB when window is set, got 102400",
		},
		{
			Name: "no policies",
			YAML: map[string]any{"policies": []any{}},
			Err:  "policies: at least one policy is required",
		},
		{
			Name: "duplicate policy names",
			YAML: map[string]any{"policies": []any{
				map[string]any{"name": "a", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"ERROR"}}},
				map[string]any{"name": "a", "type": "latency", "latency": map[string]any{"threshold_ms": 5}},
			}},
			Err: `policies::1::name: "a" is already used by policies::0`,
		},
		{
			Name: "policy without name",
			YAML: map[string]any{"policies": []any{
				map[string]any{"type": "latency", "latency": map[string]any{"threshold_ms": 5}},
			}},
			Err: "policies::0: name: must not be empty",
		},
		{
			Name: "bad status code",
			YAML: map[string]any{"policies": []any{
				map[string]any{"name": "e", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"FATAL"}}},
			}},
			Err: `policies::0: status_code: status_codes::0: unknown status code "FATAL" (want OK, ERROR or UNSET)`,
		},
		{
			Name: "negative latency",
			YAML: map[string]any{"policies": []any{
				map[string]any{"name": "s", "type": "latency", "latency": map[string]any{"threshold_ms": -1}},
			}},
			Err: "policies::0: latency: threshold_ms: must not be negative",
		},
		{
			Name: "percentage out of range",
			YAML: map[string]any{"policies": []any{
				map[string]any{"name": "p", "type": "probabilistic", "probabilistic": map[string]any{"sampling_percentage": 101}},
			}},
			Err: "policies::0: probabilistic: sampling_percentage: must be in (0, 100], got 101",
		},
		{
			Name: "budget class naming no policy",
			YAML: map[string]any{"budget": map[string]any{"traces_per_second": 100, "classes": []any{
				map[string]any{"name": "important", "policies": []any{"errors", "slow"}},
				map[string]any{"name": "rest", "policies": []any{"baselin"}},
			}}},
			Err: `budget::classes::1::policies::0: no policy named "baselin"`,
		},
		{
			Name: "budget with both rates",
			YAML: map[string]any{"budget": map[string]any{"traces_per_second": 100, "spans_per_second": 1000}},
			Err:  "budget: set only one of spans_per_second and traces_per_second",
		},
		{
			Name: "cluster without self",
			YAML: map[string]any{"cluster": map[string]any{"members": map[string]any{"static": []any{"10.0.0.5:4317"}}}},
			Err:  "cluster: self: must be this gateway's host:port as the members block lists it",
		},
		{
			Name: "cluster without members",
			YAML: map[string]any{"cluster": map[string]any{"self": "10.0.0.5:4317"}},
			Err:  "cluster: members: static or dns: one must be set",
		},
		{
			Name: "cluster handover without settle",
			YAML: map[string]any{"cluster": map[string]any{
				"self": "10.0.0.5:4317", "members": map[string]any{"static": []any{"10.0.0.5:4317"}},
				"handover": map[string]any{"settle": "0s"},
			}},
			Err: "cluster: handover: settle: must be positive, got 0s",
		},
		{
			Name: "rules and policies",
			YAML: map[string]any{"rules": []any{alwaysRule("all")}, "policies": []any{map[string]any{"name": "x", "type": "always_sample"}}},
			Err:  "rules: set rules or policies, not both (rules decide first-match, in place of the policies)",
		},
		{
			Name: "rules with sample_on_first_match",
			YAML: map[string]any{"rules": []any{alwaysRule("all")}, "sample_on_first_match": true},
			Err:  "sample_on_first_match: rules are first-match already; remove it",
		},
		{
			Name: "rule names repeated",
			YAML: map[string]any{"rules": []any{alwaysRule("a"), alwaysRule("a")}},
			Err:  `rules::1::name: "a" is already used by rules::0`,
		},
		{
			Name: "rule condition",
			YAML: map[string]any{"rules": []any{map[string]any{"name": "a", "conditions": []any{"span.name == \"x\"", "span.nme == 1"}, "sampler": map[string]any{"type": "always_sample"}}}},
			Err: `rules::0: conditions::1: unable to parse OTTL condition "span.nme == 1": segment "nme" from path "span.nme" is not a valid path nor a valid OTTL keyword for the span context - ` +
				"review https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/pkg/ottl/contexts/ottlspan to see all valid paths",
		},
		{
			Name: "budget class naming a policy in rule mode",
			YAML: map[string]any{"rules": []any{alwaysRule("all")}, "budget": map[string]any{"traces_per_second": 10, "classes": []any{
				map[string]any{"name": "c", "policies": []any{"errors"}},
			}}},
			Err: `budget::classes::0::policies::0: no policy named "errors"`,
		},
	}
}

// alwaysRule is a rules entry without conditions that keeps every trace.
func alwaysRule(name string) map[string]any {
	return map[string]any{"name": name, "sampler": map[string]any{"type": "always_sample"}}
}

// UndecodableConfigs are blocks that do not decode; Err is a part of the
// error. Each call returns fresh maps.
func UndecodableConfigs() []BadConfig {
	return []BadConfig{
		{
			Name: "unknown policy type",
			YAML: map[string]any{"policies": []any{map[string]any{"name": "x", "type": "nope"}}},
			Err:  `type: unknown policy type "nope" (known: ` + strings.Join(sampling.Types(), ", ") + `)`,
		},
		{
			Name: "unknown key in policy",
			YAML: map[string]any{"policies": []any{map[string]any{"name": "x", "type": "latency", "lantecy": map[string]any{}}}},
			Err:  `unknown key "lantecy"`,
		},
		{
			Name: "unknown key in policy settings",
			YAML: map[string]any{"policies": []any{map[string]any{"name": "x", "type": "latency", "latency": map[string]any{"treshold_ms": 5}}}},
			Err:  "'policies[0]' latency: decoding failed due to the following error(s):\n\n'sampling.LatencyConfig' has invalid keys: treshold_ms",
		},
		{
			Name: "bad byte size",
			YAML: map[string]any{"buffer": map[string]any{"max_bytes": "lots"}},
			Err:  `invalid byte size "lots"`,
		},
		{
			Name: "unknown top-level key",
			YAML: map[string]any{"shard": 3},
			Err:  "has invalid keys: shard",
		},
	}
}

// CustomConfig is the tailsift/custom block of the processor's and the
// receiver's testdata/config.yaml, decoded: every key set to a value other
// than its default.
func CustomConfig() tracebuf.Config {
	return tracebuf.Config{
		Shards: 4,
		Completion: tracebuf.CompletionConfig{
			Quiet: 500 * time.Millisecond, MaxWait: 10 * time.Second, MaxSpans: 2000, MaxTraceBytes: 8 << 20,
			Learn: tracebuf.LearnConfig{
				Enabled: true, Min: 100 * time.Millisecond, Max: 5 * time.Second,
				Quantile: 0.99, Margin: 1.5, MaxRoutes: 500,
			},
		},
		Buffer: tracebuf.BufferConfig{MaxBytes: 1 << 30, MaxQueuedBytes: 32_000_000},
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
}

// LoadConfig loads the block id of testdata/config.yaml (in the calling
// test's package) into factory's default config; the error is Validate's.
func LoadConfig(t *testing.T, factory component.Factory, id component.ID) (component.Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := factory.CreateDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg, confmap.Validate(cfg)
}

// AssertInvalid decodes c.YAML into cfg (a component's default config) and
// checks that Validate refuses it with exactly c.Err.
func (c BadConfig) AssertInvalid(t *testing.T, cfg component.Config) {
	t.Helper()
	require.NoError(t, confmap.NewFromStringMap(c.YAML).Unmarshal(cfg))
	err := confmap.Validate(cfg)
	require.Error(t, err)
	assert.Equal(t, c.Err, err.Error())
}

// AssertUndecodable checks that decoding c.YAML into cfg (a component's
// default config) fails with an error that contains c.Err.
func (c BadConfig) AssertUndecodable(t *testing.T, cfg component.Config) {
	t.Helper()
	err := confmap.NewFromStringMap(c.YAML).Unmarshal(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), c.Err)
}
