package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The documented output::exporter configuration loads in the distribution:
// the receiver names a tailsift exporter of its pipeline. Running with it is
// TestShutdownLosesNoErrorTrace's and TestKillRestartLosesNoErrorOrSlowTrace's
// "output exporter" cases.
func TestOutputExporterConfigValidates(t *testing.T) {
	path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "collector", "output-exporter.yaml"))
	require.NoError(t, err)
	out, err := exec.Command(collectorBin, "validate", "--config", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
