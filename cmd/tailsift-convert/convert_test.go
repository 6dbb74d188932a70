package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// get returns the value at a `a::b::0` path of a decoded document.
func get(t *testing.T, doc any, path string) any {
	t.Helper()
	cur := doc
	for _, k := range strings.Split(path, "::") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k]
			require.True(t, ok, "no key %q in %s", k, path)
			cur = v
		case []any:
			i := 0
			for _, ch := range k {
				i = i*10 + int(ch-'0')
			}
			require.Less(t, i, len(c), "index %s out of range in %s", k, path)
			cur = c[i]
		default:
			t.Fatalf("cannot descend into %T at %q of %s", cur, k, path)
		}
	}
	return cur
}

func decode(t *testing.T, out []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(out, &doc))
	return doc
}

// messagesFor returns the messages of one path.
func messagesFor(msgs []Message, path string) []Message {
	var out []Message
	for _, m := range msgs {
		if m.Path == path {
			out = append(out, m)
		}
	}
	return out
}

func TestConvertAllKeys(t *testing.T) {
	in, err := os.ReadFile("testdata/all-keys.yaml")
	require.NoError(t, err)
	out, msgs, err := Convert(in, Options{})
	require.NoError(t, err)
	doc := decode(t, out)

	procs := get(t, doc, "processors").(map[string]any)
	assert.NotContains(t, procs, "tail_sampling")
	assert.Contains(t, procs, "batch", "other processors are left as they were")
	assert.Equal(t, []any{"tailsift", "batch"}, get(t, doc, "service::pipelines::traces::processors"))

	for path, want := range map[string]any{
		"completion::max_wait":                  "10s",
		"completion::quiet":                     "3s",
		"completion::max_trace_bytes":           8388608,
		"buffer::max_bytes":                     "977MiB", // 100000 × 10KiB
		"decision_cache::kept_max_bytes":        "19MiB",  // 200000 × 96 B
		"decision_cache::dropped_max_entries":   1000000,
		"shards":                                4,
		"policies::3::probabilistic::hash_salt": "my-salt",
		"policies::13::and::and_sub_policy::1::not::not_sub_policy::name": "health",
		"policies::16::composite::rate_allocation::1::percent":            25,
	} {
		assert.Equal(t, want, get(t, doc, "processors::tailsift::"+path), path)
	}
	assert.Len(t, get(t, doc, "processors::tailsift::policies"), 17, "every policy carries over")

	// Every key of the contrib block gets a message saying what became of
	// it (policies carry over key for key), and the block validates.
	in2 := decode(t, in)
	for key := range get(t, in2, "processors::tail_sampling").(map[string]any) {
		if key == "policies" || key == "decision_cache" {
			continue
		}
		assert.Len(t, messagesFor(msgs, "processors::tail_sampling::"+key), 1, key)
	}
	for _, key := range []string{"sampled_cache_size", "non_sampled_cache_size"} {
		assert.Len(t, messagesFor(msgs, "processors::tail_sampling::decision_cache::"+key), 1, key)
	}
	var warned []string
	for _, m := range msgs {
		if m.Severity == Warning {
			warned = append(warned, m.Path)
		}
	}
	assert.ElementsMatch(t, []string{
		"processors::tail_sampling::tail_storage",
	}, warned)
}

func TestConvertCases(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  map[string]any // path in the output → value
		warns []string       // paths that must be warned about
		notes []string       // paths that must have a note
	}{
		{
			name: "named processor and a short decision_wait",
			in: `processors: {tail_sampling/edge: {decision_wait: 1s, policies: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}]}}
service: {pipelines: {traces: {processors: [tail_sampling/edge]}}}`,
			want: map[string]any{
				"processors::tailsift/edge::completion::max_wait": "1s",
				"processors::tailsift/edge::completion::quiet":    "1s",
				"service::pipelines::traces::processors::0":       "tailsift/edge",
			},
			notes: []string{"processors::tail_sampling/edge::decision_wait"},
		},
		{
			name: "percentages, foreign blocks, unknown types and keys",
			in: `processors:
  tail_sampling:
    unknown_key: 1
    policies:
      - {name: never, type: probabilistic, probabilistic: {sampling_percentage: 0}}
      - {name: all, type: probabilistic, probabilistic: {sampling_percentage: 150}}
      - {name: ext, type: my_extension, my_extension: {x: 1}}
      - {name: e, type: status_code, status_code: {status_codes: [ERROR]}, latency: {threshold_ms: 5}}
      - {name: s, type: latency, latency: {threshold_ms: 5, bogus: 1}}
service: {pipelines: {traces: {processors: [tail_sampling]}}}`,
			want: map[string]any{
				"processors::tailsift::policies::0::name":                               "all",
				"processors::tailsift::policies::0::probabilistic::sampling_percentage": 100,
				"processors::tailsift::policies::1::name":                               "e",
				"processors::tailsift::policies::2::latency::threshold_ms":              5,
			},
			warns: []string{
				"processors::tail_sampling::unknown_key",
				"processors::tail_sampling::policies::0::probabilistic::sampling_percentage",
				"processors::tail_sampling::policies::2::type",
				"processors::tail_sampling::policies::4::latency::bogus",
			},
			notes: []string{
				"processors::tail_sampling::policies::1::probabilistic::sampling_percentage",
				"processors::tail_sampling::policies::3::latency",
			},
		},
		{
			name: "contrib's defaults and off switches",
			in: `processors:
  tail_sampling:
    decision_wait_after_root_received: 0s
    block_on_overflow: false
    sample_on_first_match: false
    sampling_strategy: span-ingest
    drop_pending_traces_on_shutdown: true
    maximum_trace_size_bytes: 0
    decision_cache: {sampled_cache_size: 0, non_sampled_cache_size: 0}
service: {pipelines: {traces: {processors: [tail_sampling]}}}`,
			want: map[string]any{
				"processors::tailsift::decision_cache::dropped_max_entries": 0,
				"processors::tailsift::completion::max_trace_bytes":         0,
				"processors::tailsift::policies::0::type":                   "always_sample",
			},
			warns: []string{
				"processors::tail_sampling::block_on_overflow",
				"processors::tail_sampling::sampling_strategy",
				"processors::tail_sampling::drop_pending_traces_on_shutdown",
				"processors::tail_sampling::policies",
			},
			notes: []string{
				"processors::tail_sampling::decision_wait_after_root_received",
				"processors::tail_sampling::sample_on_first_match",
				"processors::tail_sampling::decision_cache::sampled_cache_size",
				"processors::tail_sampling::maximum_trace_size_bytes",
			},
		},
		{
			name: "sample_on_first_match carries over",
			in: `processors:
  tail_sampling:
    sample_on_first_match: true
service: {pipelines: {traces: {processors: [tail_sampling]}}}`,
			want: map[string]any{
				"processors::tailsift::sample_on_first_match": true,
			},
			warns: []string{"processors::tail_sampling::policies"},
			notes: []string{"processors::tail_sampling::sample_on_first_match"},
		},
		{
			name: "adaptive_tail_sampling",
			in: `processors:
  adaptive_tail_sampling:
    trace_timeout: 20s
    num_traces: 1000
    span_limit: 5000
    rules: [{name: r, sampler: {type: adaptive_throughput, goal_throughput: 100}}]
service: {pipelines: {traces: {processors: [adaptive_tail_sampling]}}}`,
			want: map[string]any{
				"processors::tailsift::completion::max_wait":                               "20s",
				"processors::tailsift::completion::max_spans":                              5000,
				"processors::tailsift::buffer::max_bytes":                                  "10MiB",
				"processors::tailsift::rules::0::name":                                     "r",
				"processors::tailsift::rules::0::sampler::type":                            "dynamic",
				"processors::tailsift::rules::0::sampler::dynamic::goal_traces_per_second": 4,
				"processors::tailsift::output::annotate_spans":                             true,
				"service::pipelines::traces::processors::0":                                "tailsift",
			},
			warns: []string{"processors::adaptive_tail_sampling::rules", "processors::adaptive_tail_sampling::rules::0::sampler::goal_throughput"},
		},
		{
			name: "adaptive_tail_sampling without rules",
			in: `processors:
  adaptive_tail_sampling: {trace_timeout: 20s}
service: {pipelines: {traces: {processors: [adaptive_tail_sampling]}}}`,
			want: map[string]any{
				"processors::tailsift::policies::0::name": "errors",
				"processors::tailsift::policies::1::type": "adaptive",
			},
			warns: []string{"processors::adaptive_tail_sampling::rules"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, msgs, err := Convert([]byte(tt.in), Options{})
			require.NoError(t, err)
			doc := decode(t, out)
			for path, want := range tt.want {
				assert.Equal(t, want, get(t, doc, path), path)
			}
			for _, p := range tt.warns {
				ms := messagesFor(msgs, p)
				if assert.NotEmpty(t, ms, "no message for %s in %v", p, msgs) {
					assert.Equal(t, Warning, ms[0].Severity, p)
				}
			}
			for _, p := range tt.notes {
				ms := messagesFor(msgs, p)
				if assert.NotEmpty(t, ms, "no message for %s in %v", p, msgs) {
					assert.Equal(t, Note, ms[0].Severity, p)
				}
			}
			for _, m := range msgs {
				assert.NotContains(t, m.Text, "does not validate", "the converted block must load: %s", m)
				assert.NotContains(t, m.Text, "does not load", "the converted block must load: %s", m)
			}
		})
	}
}

func TestConvertRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"no processor":   `processors: {batch: {}}`,
		"not a mapping":  `[1, 2]`,
		"id clash":       `processors: {tail_sampling: {}, tailsift: {}}`,
		"no processors:": `receivers: {}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Convert([]byte(in), Options{})
			assert.Error(t, err)
		})
	}
}

func TestRunStrictAndOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.yaml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-o", out, "-strict", "testdata/all-keys.yaml"}, nil, &stdout, &stderr)
	assert.Equal(t, 1, code, "-strict fails on warnings")
	assert.Contains(t, stderr.String(), "warning: processors::tail_sampling::tail_storage")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(b), "tailsift:")

	stdout.Reset()
	stderr.Reset()
	code = run([]string{"-q", "-bytes-per-trace", "2048", "-"}, strings.NewReader(
		"processors: {tail_sampling: {num_traces: 1000000}}\nservice: {pipelines: {traces: {processors: [tail_sampling]}}}\n"),
		&stdout, &stderr)
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout.String(), "max_bytes: 1954MiB")
	assert.NotContains(t, stderr.String(), "note:", "-q prints warnings only")
}

// TestConvertedConfigsValidate runs `otelcol-tailsift validate` on the
// converted test configurations.
func TestConvertedConfigsValidate(t *testing.T) {
	bin := os.Getenv("TAILSIFT_BIN")
	if bin == "" {
		t.Skip("TAILSIFT_BIN is not set (make test sets it): cannot run otelcol-tailsift validate")
	}
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			require.NoError(t, err)
			out, _, err := Convert(in, Options{})
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "converted.yaml")
			require.NoError(t, os.WriteFile(path, out, 0o600))
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			res, err := exec.CommandContext(ctx, bin, "validate", "--config", path).CombinedOutput()
			assert.NoError(t, err, "validate %s:\n%s\n%s", f, res, out)
		})
	}
}
