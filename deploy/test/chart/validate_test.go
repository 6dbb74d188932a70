package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestConfigsValidate runs `otelcol-tailsift validate` on the collector
// configs the chart renders, gateway and agent.
//
// It validates what the binary knows. Three parts of the gateway config come
// from components being added beside the chart: the `tailsift` extension
// (the durable store), and the tailsift receiver's `storage` and `cluster`
// keys. When the binary lacks the extension (`otelcol-tailsift components`
// does not list it), or refuses `storage` or `cluster` as an unknown key,
// that part is removed before validating, and the test logs that it did;
// once the binary has them, they are validated like the rest, with nothing
// to change here.
func TestConfigsValidate(t *testing.T) {
	helm, chart := tools(t)
	bin := os.Getenv("TAILSIFT_BIN")
	if bin == "" {
		t.Skip("TAILSIFT_BIN is not set: run `make test-deploy`, which builds the collector")
	}
	components, err := exec.Command(bin, "components").Output()
	require.NoError(t, err, "%s components", bin)
	var known struct {
		Extensions []struct {
			Name string `json:"name"`
		} `json:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal(components, &known))
	hasStore := slices.ContainsFunc(known.Extensions, func(e struct {
		Name string `json:"name"`
	}) bool {
		return e.Name == "tailsift"
	})

	objs := render(t, helm, chart, "")
	require.Len(t, objs.configMaps, 2)
	for name, cm := range objs.configMaps {
		t.Run(name, func(t *testing.T) {
			var cfg map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg))
			if !hasStore && dropStore(cfg) {
				t.Logf("%s lacks the tailsift extension: validating without extensions::tailsift", bin)
			}
			out, err := validate(t, bin, cfg)
			for _, key := range []string{"cluster", "storage"} {
				if err != nil && unknownKey(out, key) && dropReceiverKey(cfg, key) {
					t.Logf("%s does not know receivers::tailsift::%s yet: validating without it", bin, key)
					out, err = validate(t, bin, cfg)
				}
			}
			require.NoError(t, err, "validate %s:\n%s\n%s", name, out, cm.Data["config.yaml"])
		})
	}
}

func validate(t *testing.T, bin string, cfg map[string]any) (string, error) {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(f, data, 0o600))
	cmd := exec.Command(bin, "validate", "--config", f)
	// The gateway's cluster.self is ${env:POD_IP}:4317.
	cmd.Env = append(os.Environ(), "POD_IP=10.1.2.3")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// dropStore removes the tailsift extension; it reports whether there was one.
func dropStore(cfg map[string]any) bool {
	exts, _ := cfg["extensions"].(map[string]any)
	if _, ok := exts["tailsift"]; !ok {
		return false
	}
	delete(exts, "tailsift")
	if svc, ok := cfg["service"].(map[string]any); ok {
		if list, ok := svc["extensions"].([]any); ok {
			svc["extensions"] = slices.DeleteFunc(list, func(e any) bool { return e == "tailsift" })
		}
	}
	return true
}

// unknownKey reports whether validate's output refuses key as unknown
// ("” has invalid keys: cluster, storage").
func unknownKey(out, key string) bool {
	_, keys, ok := strings.Cut(out, "invalid keys: ")
	if !ok {
		return false
	}
	keys, _, _ = strings.Cut(keys, "\n")
	for k := range strings.SplitSeq(keys, ",") {
		if strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// dropReceiverKey removes receivers::tailsift::<key>; it reports whether there was one.
func dropReceiverKey(cfg map[string]any, key string) bool {
	receivers, _ := cfg["receivers"].(map[string]any)
	ts, _ := receivers["tailsift"].(map[string]any)
	if _, ok := ts[key]; !ok {
		return false
	}
	delete(ts, key)
	return true
}

func TestUnknownKey(t *testing.T) {
	out := "Error: failed to get config: cannot unmarshal the configuration: decoding failed due to the following error(s):\n\n" +
		"'receivers' error reading configuration for \"tailsift\": decoding failed due to the following error(s):\n\n" +
		"'' has invalid keys: cluster, storage\n"
	for key, want := range map[string]bool{"cluster": true, "storage": true, "buffer": false, "clust": false} {
		assert.Equal(t, want, unknownKey(out, key), key)
	}
	assert.False(t, unknownKey("some other error", "cluster"))
}
