package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The two documented ways to get RED metrics before sampling load in the
// distribution: the spanmetrics connector fed ahead of the tailsift
// processor, and the tailsift receiver in a traces and a metrics pipeline.
func TestREDConfigsValidate(t *testing.T) {
	for _, name := range []string{"red-processor.yaml", "red-receiver.yaml"} {
		t.Run(name, func(t *testing.T) {
			path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "collector", name))
			require.NoError(t, err)
			out, err := exec.Command(collectorBin, "validate", "--config", path).CombinedOutput()
			require.NoError(t, err, "%s", out)
		})
	}
}
