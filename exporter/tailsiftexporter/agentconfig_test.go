package tailsiftexporter

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestAgentConfigs loads the agent configurations the docs point to (the
// files under testdata/ and the YAML blocks of docs/scale-out.md and this
// README that configure the exporter) and validates each tailsift exporter
// block as the collector would: the configurations users copy must load.
func TestAgentConfigs(t *testing.T) {
	docs := map[string][]byte{}
	files, err := filepath.Glob(filepath.Join("testdata", "agent-*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		docs[f] = b
	}
	for _, f := range []string{filepath.Join("..", "..", "docs", "scale-out.md"), "README.md"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, m := range yamlBlock.FindAllSubmatch(b, -1) {
			docs[f+"#"+strings.Repeat("I", i+1)] = m[1]
		}
	}
	checked := 0
	for name, text := range docs {
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(text, &doc), name)
		exporters, _ := doc["exporters"].(map[string]any)
		for id, block := range exporters {
			if id != "tailsift" && !strings.HasPrefix(id, "tailsift/") {
				continue
			}
			t.Run(name+"/"+id, func(t *testing.T) {
				cfg := createDefaultConfig().(*Config)
				m, _ := block.(map[string]any)
				require.NoError(t, confmap.NewFromStringMap(m).Unmarshal(cfg))
				require.NoError(t, confmap.Validate(cfg))
				if _, ok := doc["service"]; ok {
					assert.Contains(t, string(text), "exporters: ["+id, "the pipeline does not use %s", id)
				}
			})
			checked++
		}
	}
	assert.GreaterOrEqual(t, checked, 3)
}
