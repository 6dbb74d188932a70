package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// inputKeys returns the path of every mapping key under v, descending into
// lists of mappings.
func inputKeys(path string, v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			p := path + "::" + k
			out = append(out, p)
			out = append(out, inputKeys(p, sub)...)
		}
	case []any:
		for i, sub := range v {
			out = append(out, inputKeys(path+"::"+strconv.Itoa(i), sub)...)
		}
	}
	return out
}

// TestConvertAdaptiveAllKeys converts a contrib adaptive_tail_sampling
// block that sets every key the converter knows, and requires each input
// key to be reported (a message on it, or a removal of a key above it) or
// mapped to the output value listed here; the converted block must load
// and validate as the collector would.
func TestConvertAdaptiveAllKeys(t *testing.T) {
	in, err := os.ReadFile("testdata/adaptive-all-keys.yaml")
	require.NoError(t, err)
	out, msgs, err := Convert(in, Options{})
	require.NoError(t, err)
	assertLoads(t, msgs)
	doc := decode(t, out)
	const src = "processors::adaptive_tail_sampling"
	const dst = "processors::tailsift"

	// Keys mapped without a message, and where they land.
	mapped := map[string]any{}
	rules := get(t, decode(t, in), src+"::rules").([]any)
	for i, r := range rules {
		p, o := src+"::rules::"+strconv.Itoa(i), dst+"::rules::"+strconv.Itoa(i)
		mapped[p] = nil
		for k := range r.(map[string]any) {
			if k != "sampler" {
				mapped[p+"::"+k] = get(t, doc, o+"::"+k)
				assert.Equal(t, get(t, decode(t, in), p+"::"+k), get(t, doc, o+"::"+k), p+"::"+k)
			}
		}
		mapped[p+"::sampler"], mapped[p+"::sampler::type"] = nil, get(t, doc, o+"::sampler::type")
	}
	for p, want := range map[string]any{
		src + "::decision_cache":                            nil,
		src + "::eviction":                                  nil,
		src + "::rules::2::sampler::sampling_percentage":    5,
		src + "::rules::3::sampler::goal_percentage":        25,
		src + "::rules::4::sampler::fingerprint_attributes": []any{"resource.service.name"},
		src + "::rules::5::sampler::fingerprint_attributes": []any{"resource.service.name", "span.http.route", "span.http.status_code", "span.tier"},
		src + "::rules::5::sampler::adjustment_interval":    "15s",
		src + "::rules::5::sampler::weight":                 0.25,
		src + "::rules::5::sampler::max_keys":               500,
	} {
		mapped[p] = want
	}
	outOf := map[string]string{
		src + "::rules::2::sampler::sampling_percentage":    dst + "::rules::2::sampler::probabilistic::sampling_percentage",
		src + "::rules::3::sampler::goal_percentage":        dst + "::rules::3::sampler::probabilistic::sampling_percentage",
		src + "::rules::4::sampler::fingerprint_attributes": dst + "::rules::4::sampler::dynamic::key",
		src + "::rules::5::sampler::fingerprint_attributes": dst + "::rules::5::sampler::dynamic::key",
		src + "::rules::5::sampler::adjustment_interval":    dst + "::rules::5::sampler::dynamic::adjustment_interval",
		src + "::rules::5::sampler::weight":                 dst + "::rules::5::sampler::dynamic::weight",
		src + "::rules::5::sampler::max_keys":               dst + "::rules::5::sampler::dynamic::max_keys",
	}
	for p, o := range outOf {
		assert.Equal(t, mapped[p], get(t, doc, o), p)
	}

	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(in, &raw))
	keys := inputKeys("processors", raw["processors"])
	for _, p := range keys {
		if !strings.HasPrefix(p, src) || p == src {
			continue
		}
		reported := slices.ContainsFunc(msgs, func(m Message) bool {
			return m.Path == p || (strings.HasPrefix(p, m.Path+"::") && strings.HasPrefix(m.Text, "removed"))
		})
		_, isMapped := mapped[p]
		assert.True(t, reported || isMapped, "%s: neither mapped nor reported", p)
	}

	// The file sets every key the converter knows.
	for _, known := range []map[string]keyHandler{adaptiveKeys, evictionKeys, decisionCacheKeys} {
		for k := range known {
			assert.True(t, slices.ContainsFunc(keys, func(p string) bool { return strings.HasSuffix(p, "::"+k) }), "testdata sets %s", k)
		}
	}
	for k := range samplerKeys {
		assert.True(t, slices.ContainsFunc(keys, func(p string) bool { return strings.HasSuffix(p, "::sampler::"+k) }), "testdata sets sampler %s", k)
	}
	for k := range ruleKeys {
		assert.True(t, slices.ContainsFunc(keys, func(p string) bool { return strings.HasSuffix(p, "::"+k) }), "testdata sets rule %s", k)
	}
}

// TestConvertAdaptiveSamplers: each contrib sampler type, and the keys
// that cannot carry over.
func TestConvertAdaptiveSamplers(t *testing.T) {
	tests := []struct {
		name    string
		sampler string
		want    map[string]any // under the converted rule's sampler
		warns   []string       // under the input rule's sampler
		removed bool           // the rule is removed
	}{
		{name: "always_sample", sampler: `{type: always_sample}`, want: map[string]any{"type": "always_sample"}},
		{
			name: "probabilistic", sampler: `{type: probabilistic, sampling_percentage: 150}`,
			want: map[string]any{"type": "probabilistic", "probabilistic::sampling_percentage": 100},
		},
		{name: "probabilistic at 0", sampler: `{type: probabilistic, sampling_percentage: 0}`, removed: true},
		{
			name: "adaptive_throughput", sampler: `{type: adaptive_throughput, goal_throughput: 50, fingerprint_attributes: ['resource.attributes["service.name"]']}`,
			want:  map[string]any{"type": "dynamic", "dynamic::goal_traces_per_second": 2, "dynamic::key": []any{"resource.service.name"}},
			warns: []string{"goal_throughput"},
		},
		{name: "unknown type", sampler: `{type: deterministic}`, removed: true, warns: []string{"type"}},
		{name: "key of another type", sampler: `{type: always_sample, goal_percentage: 5}`, want: map[string]any{"type": "always_sample"}, warns: []string{"goal_percentage"}},
		{name: "unknown key", sampler: `{type: always_sample, rate: 5}`, want: map[string]any{"type": "always_sample"}, warns: []string{"rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "processors:\n  adaptive_tail_sampling:\n    rules:\n      - {name: r, sampler: " + tt.sampler + "}\n      - {name: rest, sampler: {type: always_sample}}\n" +
				"service: {pipelines: {traces: {processors: [adaptive_tail_sampling]}}}\n"
			out, msgs, err := Convert([]byte(in), Options{SpansPerTrace: 25})
			require.NoError(t, err)
			doc := decode(t, out)
			assertLoads(t, msgs)
			if tt.removed {
				assert.Equal(t, "rest", get(t, doc, "processors::tailsift::rules::0::name"), "the rule was removed")
				assert.NotEmpty(t, messagesFor(msgs, "processors::adaptive_tail_sampling::rules::0"))
			} else {
				for k, v := range tt.want {
					assert.Equal(t, v, get(t, doc, "processors::tailsift::rules::0::sampler::"+k), k)
				}
			}
			for _, k := range tt.warns {
				ms := messagesFor(msgs, "processors::adaptive_tail_sampling::rules::0::sampler::"+k)
				if assert.NotEmpty(t, ms, k) {
					assert.Equal(t, Warning, ms[0].Severity)
				}
			}
		})
	}
}

// assertLoads requires that check found the converted block loading and
// valid.
func assertLoads(t *testing.T, msgs []Message) {
	t.Helper()
	for _, m := range msgs {
		assert.NotContains(t, m.Text, "does not load", "%s", m)
		assert.NotContains(t, m.Text, "does not validate", "%s", m)
	}
}
