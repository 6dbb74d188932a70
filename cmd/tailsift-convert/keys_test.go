package main

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/sampling"
)

// tags returns the mapstructure keys of a struct type, following squashed
// (embedded) structs; ",remain" and "-" fields are left out.
func tags(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag := f.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case opts == "squash":
			out = append(out, tags(f.Type)...)
		case name == "" || name == "-":
		default:
			out = append(out, name)
		}
	}
	return out
}

// fieldType returns the type of the field of t with mapstructure key key,
// following squashed structs.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if opts == "squash" {
			if ft, ok := fieldType(f.Type, key); ok {
				return ft, true
			}
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// TestEveryContribKeyIsHandled walks contrib's Config: a key the converter
// neither maps nor reports fails here, so a new contrib release cannot add
// a key that is dropped silently.
func TestEveryContribKeyIsHandled(t *testing.T) {
	cfgType := reflect.TypeFor[tailsamplingprocessor.Config]()
	for _, key := range tags(cfgType) {
		assert.Contains(t, tailSamplingKeys, key, "contrib tail_sampling key %q has no handler", key)
	}
	for key := range tailSamplingKeys {
		assert.Contains(t, tags(cfgType), key, "handler for %q, which contrib's Config does not have", key)
	}
	dc, ok := fieldType(cfgType, "decision_cache")
	require.True(t, ok)
	assert.ElementsMatch(t, tags(dc), slices.Collect(mapsKeys(decisionCacheKeys)))

	// Every policy block of contrib's PolicyCfg, and of the sub-policy
	// configs, is a type the converter knows with the same keys.
	blocks := map[string]bool{}
	for _, pt := range []reflect.Type{
		reflect.TypeFor[tailsamplingprocessor.PolicyCfg](),
		reflect.TypeFor[tailsamplingprocessor.AndSubPolicyCfg](),
		reflect.TypeFor[tailsamplingprocessor.CompositeSubPolicyCfg](),
	} {
		for _, key := range tags(pt) {
			if key == "name" || key == "type" {
				continue
			}
			blocks[key] = true
			ft, _ := fieldType(pt, key)
			want, ok := contribPolicyKeys[key]
			if assert.True(t, ok, "contrib policy block %q unknown to the converter", key) {
				assert.ElementsMatch(t, tags(ft), want, "keys of contrib policy %q", key)
			}
		}
	}
	for typ, keys := range contribPolicyKeys {
		if len(keys) > 0 {
			assert.True(t, blocks[typ], "converter lists policy %q with keys, contrib has no such block", typ)
		}
		// tailsift registers every contrib type under the same name.
		assert.Contains(t, sampling.Types(), typ)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestAllKeysConfigCoversContrib checks the test input itself: it loads in
// contrib's processor, names every contrib key, and has every policy type.
func TestAllKeysConfigCoversContrib(t *testing.T) {
	raw, err := os.ReadFile("testdata/all-keys.yaml")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	block := doc["processors"].(map[string]any)["tail_sampling"].(map[string]any)

	cfg := tailsamplingprocessor.NewFactory().CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(block).Unmarshal(cfg), "contrib must load the test input")

	for _, key := range tags(reflect.TypeFor[tailsamplingprocessor.Config]()) {
		assert.Contains(t, block, key, "testdata/all-keys.yaml lacks contrib key %q", key)
	}
	types := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if typ, ok := v["type"].(string); ok {
				types[typ] = true
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(block["policies"])
	for typ := range contribPolicyKeys {
		assert.True(t, types[typ], "testdata/all-keys.yaml has no %q policy", typ)
	}
}
