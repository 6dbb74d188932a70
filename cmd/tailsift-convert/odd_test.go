package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/processor/tailsiftprocessor"
)

// convertCatching runs Convert, catching panics.
func convertCatching(in string) (out []byte, msgs []Message, panicked any, err error) {
	defer func() { panicked = recover() }()
	out, msgs, err = Convert([]byte(in), Options{})
	return
}

// outputLoads parses the output and loads every tailsift processor block.
func outputLoads(out []byte) error {
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("output does not parse: %w", err)
	}
	procs, _ := doc["processors"].(map[string]any)
	for id, blk := range procs {
		if !strings.HasPrefix(id, "tailsift") {
			continue
		}
		m, _ := blk.(map[string]any)
		cfg := tailsiftprocessor.NewFactory().CreateDefaultConfig()
		if err := confmap.NewFromStringMap(m).Unmarshal(cfg); err != nil {
			return fmt.Errorf("%s: does not unmarshal: %w", id, err)
		}
		if err := confmap.Validate(cfg); err != nil {
			return fmt.Errorf("%s: does not validate: %w", id, err)
		}
	}
	return nil
}

// TestConvertOddInputs: odd YAML (wrong kinds, nulls, anchors and merge
// keys, huge numbers, several documents) never panics, and what converts
// without a warning loads as a tailsift processor.
func TestConvertOddInputs(t *testing.T) {
	const pipe = "\nservice: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}}\n"
	cases := map[string]string{
		"null block":       "processors:\n  tail_sampling:\n" + pipe,
		"list block":       "processors:\n  tail_sampling: [1,2]\n" + pipe,
		"policies null":    "processors:\n  tail_sampling: {policies: null}\n" + pipe,
		"policies scalar":  "processors:\n  tail_sampling: {policies: 3}\n" + pipe,
		"policy null":      "processors:\n  tail_sampling: {policies: [null, ~]}\n" + pipe,
		"type mapping":     "processors:\n  tail_sampling: {policies: [{name: a, type: {x: 1}}]}\n" + pipe,
		"huge num_traces":  "processors:\n  tail_sampling: {num_traces: 1000000000000000, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"huge num_traces2": "processors:\n  tail_sampling: {num_traces: 900719925474099, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"neg num_traces":   "processors:\n  tail_sampling: {num_traces: -5, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"huger num":        "processors:\n  tail_sampling: {num_traces: 99999999999999999999999, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"huge cache":       "processors:\n  tail_sampling: {decision_cache: {sampled_cache_size: 96076792050570581}, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"nan pct":          "processors:\n  tail_sampling: {policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: .nan}}]}\n" + pipe,
		"inf pct":          "processors:\n  tail_sampling: {policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: .inf}}]}\n" + pipe,
		"pct mapping":      "processors:\n  tail_sampling: {policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: {a: 1}}}]}\n" + pipe,
		"not null":         "processors:\n  tail_sampling: {policies: [{name: a, type: not, not: {not_sub_policy: null}}]}\n" + pipe,
		"not list":         "processors:\n  tail_sampling: {policies: [{name: a, type: not, not: {not_sub_policy: [1]}}]}\n" + pipe,
		"and scalar":       "processors:\n  tail_sampling: {policies: [{name: a, type: and, and: {and_sub_policy: x}}]}\n" + pipe,
		"dw mapping":       "processors:\n  tail_sampling: {decision_wait: {a: 1}, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"dw negative":      "processors:\n  tail_sampling: {decision_wait: -5s, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"dw zero":          "processors:\n  tail_sampling: {decision_wait: 0s, policies: [{name: a, type: always_sample}]}\n" + pipe,
		"merge key": `processors:
  tail_sampling:
    <<: {decision_wait: 5s}
    policies: [{name: a, type: always_sample}]
` + pipe,
		"anchored block reused": `processors:
  tail_sampling: &ts
    decision_wait: 5s
    policies: [{name: a, type: latency, latency: {threshold_ms: 100}}]
  tail_sampling/b: *ts
service: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling, tail_sampling/b], exporters: [debug]}}}
`,
		"anchored policy reused": `processors:
  tail_sampling:
    policies:
      - &lat {name: slow, type: latency, latency: {threshold_ms: 100}}
      - {name: both, type: and, and: {and_sub_policy: [*lat]}}
` + pipe,
		"aliased latency block": `processors:
  tail_sampling:
    policies:
      - {name: slow, type: latency, latency: &l {threshold_ms: 100}}
      - {name: slow2, type: latency, latency: *l}
` + pipe,
		"aliased processors": `x: &p
  tail_sampling: {policies: [{name: a, type: always_sample}]}
processors: *p
` + pipe,
		"flow processors": "processors: {tail_sampling: {decision_wait: 10s, num_traces: 100, policies: [{name: a, type: always_sample}]}}\n" + pipe,
		"flow rule": `processors:
  adaptive_tail_sampling:
    rules: [{name: r, conditions: ['true'], sampler: {type: adaptive_percentage, goal_percentage: 10}}]
service: {pipelines: {traces: {receivers: [otlp], processors: [adaptive_tail_sampling], exporters: [debug]}}}
`,
		"flow rule throughput": `processors:
  adaptive_tail_sampling:
    rules: [{name: r, conditions: ['true'], sampler: {type: adaptive_throughput, goal_throughput: 100, update_frequency: 5s}}]
service: {pipelines: {traces: {receivers: [otlp], processors: [adaptive_tail_sampling], exporters: [debug]}}}
`,
		"adaptive list":       "processors:\n  adaptive_tail_sampling: [1]\nservice: {}\n",
		"rules null":          "processors:\n  adaptive_tail_sampling: {rules: [null, {sampler: null}, {sampler: {type: {a: 1}}}]}\n",
		"fingerprint mapping": "processors:\n  adaptive_tail_sampling: {rules: [{name: r, sampler: {type: adaptive_throughput, goal_throughput: 10, fingerprint_attributes: [{a: 1}, null]}}]}\n",
		"max_keys huge":       "processors:\n  adaptive_tail_sampling: {rules: [{name: r, sampler: {type: adaptive_throughput, goal_throughput: 10, max_keys: 9223372036854775807}}]}\n",
		"goal inf":            "processors:\n  adaptive_tail_sampling: {rules: [{name: r, sampler: {type: adaptive_throughput, goal_throughput: .inf}}]}\n",
		"goal tiny":           "processors:\n  adaptive_tail_sampling: {rules: [{name: r, sampler: {type: adaptive_throughput, goal_throughput: 1e-300}}]}\n",
		"pipelines alias": `processors:
  tail_sampling: {policies: [{name: a, type: always_sample}]}
service:
  pipelines:
    traces: &t {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}
    traces/2: *t
`,
		"empty key":          "processors:\n  \"\": {}\n  tail_sampling: {}\n",
		"key tail_sampling/": "processors:\n  tail_sampling/: {policies: [{name: a, type: always_sample}]}\n",
		"doc list":           "- 1\n",
		"doc scalar":         "hi\n",
		"doc empty":          "",
		"doc comment":        "# x\n",
		"two docs":           "processors: {tail_sampling: {}}\n---\nprocessors: {}\n",
		"tagged":             "processors:\n  tail_sampling: !!str x\n",
		"binary tag":         "processors:\n  tail_sampling: {num_traces: !!binary aGVsbG8=, policies: [{name: a, type: always_sample}]}\n",
		"ts dup keys":        "processors:\n  tail_sampling: {num_traces: 1, num_traces: 2, policies: [{name: a, type: always_sample}]}\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out, msgs, p, err := convertCatching(in)
			require.Nil(t, p, "panic")
			if err != nil {
				return
			}
			for _, m := range msgs {
				if m.Severity == Warning {
					return
				}
			}
			require.NoError(t, outputLoads(out), "converted without a warning:\n%s", out)
		})
	}
}

// TestConvertHugeCounts: num_traces times the bytes per trace overflowed:
// 1e15 became buffer.max_bytes: 1MiB, and another count a negative size.
// Sizes are capped at 1 TiB now, with a warning, and a negative count
// (which contrib refuses) is warned about and left out.
func TestConvertHugeCounts(t *testing.T) {
	for n, want := range map[string]string{
		"1000000000000000": "1048576MiB", "900719925474099": "1048576MiB", "-5": "", "1000": "",
	} {
		in := "processors:\n  tail_sampling: {num_traces: " + n + ", decision_cache: {sampled_cache_size: " + n + "}, policies: [{name: a, type: always_sample}]}\n" +
			"service: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}}\n"
		out, msgs, err := Convert([]byte(in), Options{})
		require.NoError(t, err)
		require.NoError(t, outputLoads(out), n)
		var doc struct {
			Processors struct {
				Tailsift struct {
					Buffer struct {
						MaxBytes string `yaml:"max_bytes"`
					} `yaml:"buffer"`
				} `yaml:"tailsift"`
			} `yaml:"processors"`
		}
		require.NoError(t, yaml.Unmarshal(out, &doc))
		got := doc.Processors.Tailsift.Buffer.MaxBytes
		switch {
		case want != "":
			assert.Equal(t, want, got, n)
		case n == "-5":
			assert.Empty(t, got, n)
			assert.True(t, hasWarning(msgs, "is negative"), "%v", msgs)
		default:
			assert.NotEmpty(t, got, n)
		}
	}
}

func hasWarning(msgs []Message, text string) bool {
	for _, m := range msgs {
		if m.Severity == Warning && strings.Contains(m.String(), text) {
			return true
		}
	}
	return false
}

// TestConvertAliases: the converter edits nodes in place, and an alias
// node's Value is its anchor's name: a percentage capped through an alias
// came out as `sampling_percentage: *100` (an unknown anchor), an aliased
// policy was removed, an aliased block emptied, merge keys dropped.
// Aliases and merge keys are written out where they are used now.
func TestConvertAliases(t *testing.T) {
	for name, in := range map[string]string{
		"percentage from outside": `processors:
  batch: {send_batch_size: &n 150}
  tail_sampling:
    policies:
      - {name: b, type: probabilistic, probabilistic: {sampling_percentage: *n}}
service: {pipelines: {traces: {receivers: [otlp], processors: [batch, tail_sampling], exporters: [debug]}}}
`,
		"percentage within": `processors:
  tail_sampling:
    policies:
      - {name: a, type: probabilistic, probabilistic: {sampling_percentage: &pct 150}}
      - {name: b, type: probabilistic, probabilistic: {sampling_percentage: *pct}}
service: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}}
`,
		"policy reused": `processors:
  tail_sampling:
    policies:
      - &lat {name: slow, type: latency, latency: {threshold_ms: 100}}
      - {name: both, type: and, and: {and_sub_policy: [*lat]}}
service: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}}
`,
		"merge key": `processors:
  tail_sampling:
    <<: {decision_wait: 5s}
    policies: [{name: a, type: latency, latency: &l {threshold_ms: 100}}, {name: b, type: latency, latency: *l}]
service: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}}
`,
	} {
		out, _, p, err := convertCatching(in)
		require.Nil(t, p, name)
		require.NoError(t, err, name)
		require.NoError(t, outputLoads(out), "%s:\n%s", name, out)
		assert.NotContains(t, string(out), "*", name)
		if name == "merge key" {
			assert.Contains(t, string(out), "max_wait: 5s", "the merged decision_wait is converted:\n%s", out)
			assert.Equal(t, 2, strings.Count(string(out), "threshold_ms: 100"), "both latency blocks:\n%s", out)
		}
	}
}
