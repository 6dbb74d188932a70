package tailsiftprocessor

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocsExamples loads every YAML example of the policy docs and the
// migration guide that configures tailsift, as the collector would, and
// builds a processor from it: the examples users copy must work.
func TestDocsExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "policies", "*.md"))
	require.NoError(t, err)
	files = append(files, filepath.Join("..", "..", "docs", "migrating-from-contrib.md"), filepath.Join("..", "..", "README.md"))
	checked := 0
	for _, f := range files {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, m := range yamlBlock.FindAllSubmatch(text, -1) {
			var doc any
			if err := yaml.Unmarshal(m[1], &doc); err != nil {
				t.Errorf("%s, yaml block %d: %v", f, i+1, err)
				continue
			}
			block := tailsiftBlock(doc)
			if block == nil {
				continue // not a tailsift configuration (contrib's, a pipeline, ...)
			}
			t.Run(filepath.Base(f)+"/"+string(rune('0'+i/10))+string(rune('0'+i%10)), func(t *testing.T) {
				cfg := createDefaultConfig().(*Config)
				require.NoError(t, confmap.NewFromStringMap(block).Unmarshal(cfg), "%s", m[1])
				require.NoError(t, confmap.Validate(cfg), "%s", m[1])
				p, err := newProcessor(processortest.NewNopSettings(metadata.Type), cfg, new(consumertest.TracesSink))
				require.NoError(t, err, "%s", m[1])
				require.NoError(t, p.Shutdown(context.Background()))
			})
			checked++
		}
	}
	require.Greater(t, checked, 10, "examples found")
}

// tailsiftBlock returns the tailsift processor settings an example holds:
// processors.tailsift, a map with policies (and budget) or rules, or a bare list of
// policies; nil for anything else.
func tailsiftBlock(doc any) map[string]any {
	switch d := doc.(type) {
	case []any:
		if len(d) > 0 {
			if m, ok := d[0].(map[string]any); ok && m["type"] != nil {
				return map[string]any{"policies": d}
			}
		}
	case map[string]any:
		if procs, ok := d["processors"].(map[string]any); ok {
			if ts, ok := procs["tailsift"].(map[string]any); ok {
				return ts
			}
			return nil
		}
		if _, ok := d["policies"]; ok {
			return d
		}
		if _, ok := d["rules"]; ok {
			return d
		}
	}
	return nil
}
