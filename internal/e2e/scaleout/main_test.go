//go:build linux

package scaleout

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/e2e"
)

// collectorBin is the otelcol-tailsift binary every process runs.
var collectorBin string

// clusterBlock reports whether the binary's tailsift processor takes a
// cluster block (misrouted-span forwarding, handover, drain). Without it
// the gateways are plain tailsift gateways, and the scenarios that change
// the ring are only measured on request (see plainEnv).
var clusterBlock bool

// plainEnv, set to 1, runs the ring-change scenarios against gateways
// without the cluster block (whether the binary has it or not), logging
// what they lose instead of asserting the targets: the baseline the
// cluster block is measured against.
const plainEnv = "TAILSIFT_SCALEOUT_PLAIN"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if lis, err := net.Listen("tcp", "127.0.0.11:0"); err != nil {
		fmt.Fprintf(os.Stderr, "scaleout: skipped, 127.0.0.11 is not a local address here: %v\n", err)
		return 0
	} else {
		_ = lis.Close()
	}
	bin, cleanup, err := e2e.Binary(filepath.Join("..", "..", ".."))
	if err != nil {
		fmt.Fprintf(os.Stderr, "scaleout: %v\n", err)
		return 1
	}
	defer cleanup()
	collectorBin = bin
	if clusterBlock, err = acceptsClusterBlock(); err != nil {
		fmt.Fprintf(os.Stderr, "scaleout: %v\n", err)
		return 1
	}
	return m.Run()
}

// acceptsClusterBlock asks the binary to validate a gateway configuration
// with a cluster block.
func acceptsClusterBlock() (bool, error) {
	var cfg bytes.Buffer
	err := templates.ExecuteTemplate(&cfg, "gateway.yaml", gatewayConfig{
		members: members{Static: []string{"127.0.0.11:4317", "127.0.0.12:4317"}},
		Name:    "probe", Addr: "127.0.0.11:4317", HealthAddr: "127.0.0.11:13133", SinkAddr: "127.0.0.1:4317",
		Quiet: time.Second, MaxWait: 2 * time.Second, SlowThresholdMs: 1000, Cluster: true, Drain: time.Second,
	})
	if err != nil {
		return false, fmt.Errorf("render the probe gateway config: %w", err)
	}
	dir, err := os.MkdirTemp("", "scaleout-probe-")
	if err != nil {
		return false, fmt.Errorf("create a directory for the probe config: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
		return false, fmt.Errorf("write the probe config: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, collectorBin, "validate", "--config", "file:"+path).CombinedOutput()
	if err == nil {
		return true, nil
	}
	if bytes.Contains(out, []byte("cluster")) {
		return false, nil // the error names the unknown key
	}
	return false, fmt.Errorf("validate a gateway config: %w\n%s", err, out)
}
