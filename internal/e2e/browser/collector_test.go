package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/statuspage"
)

// collectorBin is the otelcol-tailsift binary: $TAILSIFT_BIN, or a fresh
// build when unset.
var collectorBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	collectorBin = os.Getenv("TAILSIFT_BIN")
	if collectorBin == "" {
		dir, err := os.MkdirTemp("", "tailsift-browser")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		collectorBin = filepath.Join(dir, "otelcol-tailsift")
		build := exec.Command("go", "build", "-o", collectorBin, ".")
		build.Dir = filepath.Join("..", "..", "..", "cmd", "otelcol-tailsift")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the collector: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// configTemplate runs the tailsift processor behind an OTLP receiver, with
// every section of the status page in use (a budget, an adaptive policy),
// the tailsift extension serving the page and storing every trace for the
// trace view, and the self-metrics on a Prometheus endpoint.
var configTemplate = template.Must(template.New("config").Parse(`
extensions:
  tailsift:
    endpoint: {{.Ext}}
    directory: {{.Dir}}/store
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{.GRPC}}
processors:
  tailsift:
    storage: tailsift
    completion: {quiet: 500ms, max_wait: 5s}
    buffer: {max_bytes: 64MiB}
    policies:
      - {name: errors,    type: status_code,   status_code:   {status_codes: [ERROR]}}
      - {name: slow,      type: latency,       latency:       {threshold_ms: 1000}}
      - {name: anomalies, type: adaptive,      adaptive:      {min_observations: 10, rare_key_warmup: 0s}}
      - {name: baseline,  type: probabilistic, probabilistic: {sampling_percentage: 5}}
    budget:
      traces_per_second: 40
      classes:
        - {name: errors,    policies: [errors], never_drop: true}
        - {name: anomalies, policies: [slow, anomalies]}
        - {name: rest,      policies: [baseline]}
exporters:
  file:
    path: {{.Dir}}/kept.otlp
    format: proto
service:
  extensions: [tailsift]
  telemetry:
    logs: {level: warn}
    metrics:
      readers:
        - pull:
            exporter:
              prometheus: {host: 127.0.0.1, port: {{.MetricsPort}}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tailsift]
      exporters: [file]
`))

// collector is a running collector and where it listens.
type collector struct {
	grpc, ext, metrics string // host:port
}

// startCollector starts the collector and waits until its status page
// lists the processor; it is stopped when the test ends.
func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{grpc: freeAddr(t), ext: freeAddr(t), metrics: freeAddr(t)}
	_, metricsPort, err := net.SplitHostPort(c.metrics)
	require.NoError(t, err)
	dir := t.TempDir()
	var cfg strings.Builder
	require.NoError(t, configTemplate.Execute(&cfg, map[string]string{
		"Ext": c.ext, "Dir": dir, "GRPC": c.grpc, "MetricsPort": metricsPort,
	}))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg.String()), 0o600))

	logPath := filepath.Join(dir, "collector.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(collectorBin, "--config", "file:"+path)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("collector exited uncleanly: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("collector did not stop within 20s of SIGTERM")
		}
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("collector config:\n%s\ncollector output:\n%s", cfg.String(), out)
		}
	})

	client := &http.Client{Timeout: time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://" + c.ext + statuspage.StatusPath)
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		var s statuspage.Snapshot
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&s) == nil && len(s.Components) == 1
	}, 30*time.Second, 100*time.Millisecond, "the status page never listed the processor")
	return c
}

// scrape returns the collector's Prometheus metrics, each name's series
// summed, keyed by name; a series whose labels include one of match (as
// `key="value"`) is summed under name{match} as well.
func (c *collector) scrape(t *testing.T, match ...string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.metrics + "/metrics") //nolint:noctx // a local server, the test's own timeout
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		require.NoError(t, err, line)
		series := line[:sp]
		name, labels, _ := strings.Cut(series, "{")
		out[name] += v
		for _, m := range match {
			if strings.Contains(labels, m) {
				out[name+"{"+m+"}"] += v
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// freeAddr returns a loopback address whose port was free.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// within is parent (a chromedp context that has run once) for at most d,
// to limit one action.
func within(t *testing.T, parent context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(parent, d)
	t.Cleanup(cancel)
	return ctx
}
