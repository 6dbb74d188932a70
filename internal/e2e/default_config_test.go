package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The configuration `make run` starts on is one the distribution accepts:
// every component and policy type in it exists and validates.
func TestDefaultConfigValidates(t *testing.T) {
	cfg, err := filepath.Abs(filepath.Join("..", "..", "config", "default.yaml"))
	require.NoError(t, err)
	out, err := exec.Command(collectorBin, "validate", "--config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
