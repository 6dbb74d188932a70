package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
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

// Each configuration, run with the metrics sent to a file every second,
// reports one call per span sent, before sampling: error traces and
// traces the policies drop alike.
func TestREDConfigsCountEverySpan(t *testing.T) {
	// The files name no telemetry: the collectors must start with the
	// default self-metrics port (localhost:8888) held by another process.
	holdDefaultMetricsPort(t)
	// Each file's metrics pipeline and the receiver that feeds it.
	for name, metrics := range map[string]string{"red-processor.yaml": "spanmetrics", "red-receiver.yaml": "tailsift"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "collector", name))
			require.NoError(t, err)
			c := &collector{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), output: &syncBuffer{}, exited: make(chan struct{})}
			dir := t.TempDir()
			out := filepath.Join(dir, "red.json")
			config := replaceAll(t, string(raw), map[string]string{
				"127.0.0.1:4317": c.grpcAddr, "127.0.0.1:4318": c.httpAddr,
				"interval: 60s":            "interval: 1s",
				"exporters:\n  otlp_grpc:": "exporters:\n  file/red:\n    path: " + out + "\n    flush_interval: 100ms\n  otlp_grpc:",
				"metrics/red:\n      receivers: [" + metrics + "]\n      exporters: [otlp_grpc]": "metrics/red:\n      receivers: [" + metrics + "]\n      exporters: [file/red]",
			}, "testdata/collector/"+name)
			require.NoError(t, c.launch(t, filepath.Join(dir, "config.yaml"), dir, []byte(config)))

			tts := newTraces(newRand(t), map[traceClass]int{classError: 5, classFast: 20})
			stats := sendAll(ctxFor(t, time.Minute), newExporter(t, overGRPC, c), tts, 5, 1)
			require.Zero(t, stats.failed, "requests refused: %v", stats.firstErr)
			spans := 0
			for _, tt := range tts {
				spans += len(tt.spans)
			}
			// The metrics are cumulative: the last line written counts
			// everything once it has caught up.
			var calls int64
			deadline := time.Now().Add(30 * time.Second)
			for calls < int64(spans) && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				calls = lastCalls(t, out)
			}
			assert.Equal(t, int64(spans), calls, "calls over every series")
		})
	}
}

// lastCalls sums traces.span.metrics.calls in the last line the file
// exporter wrote (JSON, one ExportMetricsServiceRequest a line).
func lastCalls(t *testing.T, path string) int64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics([]byte(lines[len(lines)-1]))
	if err != nil {
		return 0 // a line still being written
	}
	var calls int64
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() == "traces.span.metrics.calls" {
					for _, dp := range m.Sum().DataPoints().All() {
						calls += dp.IntValue()
					}
				}
			}
		}
	}
	return calls
}

// holdDefaultMetricsPort listens on the collector's default self-metrics
// address until the test ends, as another collector on the host would. If
// something holds it already, that does the same.
func holdDefaultMetricsPort(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "localhost:8888")
	if err != nil {
		t.Logf("localhost:8888 already held: %v", err)
		return
	}
	t.Cleanup(func() { _ = l.Close() })
}
