package tailsiftreceiver

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// TestGatewayTemplates renders the gateway templates of testdata/collector
// (what the scale-out e2e runs) and loads their tailsift receiver block.
func TestGatewayTemplates(t *testing.T) {
	tmpl := template.Must(template.ParseGlob(filepath.Join("..", "..", "testdata", "collector", "*.yaml")))
	data := map[string]any{
		"Self": "127.0.0.12:4417", "Members": []string{"127.0.0.11:4417", "127.0.0.12:4417", "127.0.0.13:4417"},
		"DNSHost": "gateways.tailsift.test", "DNSPort": 4417, "DNSServer": "127.0.0.1:5353", "DNSInterval": "1s",
		"SinkAddr": "127.0.0.1:4999", "Drain": "2s", "Handover": true, "Settle": "1s",
		"Quiet": "1s", "MaxWait": "10s", "SlowThresholdMs": 1000, "BaselinePct": 1,
	}
	for _, name := range []string{"gateway-static.yaml", "gateway-dns.yaml"} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, tmpl.ExecuteTemplate(&out, name, data))
			var doc map[string]any
			require.NoError(t, yaml.Unmarshal(out.Bytes(), &doc))
			block, err := confmap.NewFromStringMap(doc).Sub("receivers::tailsift")
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			require.NoError(t, block.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			c := cfg.Cluster.Get()
			require.NotNil(t, c)
			assert.Equal(t, "127.0.0.12:4417", c.Self)
			assert.True(t, c.Handover.Enabled)
			if name == "gateway-static.yaml" {
				assert.Equal(t, data["Members"], c.Members.Static)
			} else {
				assert.Equal(t, "gateways.tailsift.test", c.Members.DNS.Get().Hostname)
			}
		})
	}
}

// TestScaleOutDocGateway loads the tailsift receiver blocks of
// docs/scale-out.md.
func TestScaleOutDocGateway(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "scale-out.md"))
	require.NoError(t, err)
	checked := 0
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1) {
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(m[1], &doc))
		block, err := confmap.NewFromStringMap(doc).Sub("receivers::tailsift")
		require.NoError(t, err)
		if len(block.AllKeys()) == 0 {
			continue
		}
		raw := block.ToStringMap()
		if _, ok := raw["route"]; ok {
			continue // an agent's (TestRouteModeConfigFiles)
		}
		t.Setenv("POD_IP", "10.0.0.5")
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		c := raw["cluster"].(map[string]any)
		c["self"] = os.ExpandEnv(strings.ReplaceAll(c["self"].(string), "${env:POD_IP}", "${POD_IP}"))
		require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
		require.NoError(t, confmap.Validate(cfg))
		assert.Equal(t, "10.0.0.5:4317", cfg.Cluster.Get().Self)
		checked++
	}
	assert.Equal(t, 1, checked)
}
