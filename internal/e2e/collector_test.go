package e2e

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
)

// collectorConfig is what a test chooses of the collector's configuration.
type collectorConfig struct {
	Quiet       time.Duration // completion.quiet
	MaxWait     time.Duration // completion.max_wait
	BaselinePct float64       // the probabilistic policy's sampling_percentage
	SinkAddr    string        // where the otlp_grpc (or, with WireOut, tailsift) exporter sends
	GRPCMaxMiB  int           // the otlp receiver's grpc max_recv_msg_size_mib, when not 0
	StoreDir    string        // with the tailsift extension's store in this directory, when set
	// WireOut: kept spans leave through output::exporter, as bytes, to a
	// tailsift exporter whose one member is SinkAddr, not as pdata to
	// otlp_grpc.
	WireOut bool
}

// fastConfig is the configuration of tests that want quick decisions.
func fastConfig(sinkAddr string) collectorConfig {
	return collectorConfig{Quiet: 300 * time.Millisecond, MaxWait: 5 * time.Second, BaselinePct: 10, SinkAddr: sinkAddr}
}

// collectorTemplates are the shared collector configurations of
// testdata/collector; the tests run e2e.yaml.
var collectorTemplates = template.Must(template.ParseGlob(filepath.Join("..", "..", "testdata", "collector", "*.yaml")))

// slowThresholdMs is the slow policy's latency threshold_ms.
const slowThresholdMs = 1000

// collector is a running otelcol-tailsift child process.
type collector struct {
	grpcAddr   string
	httpAddr   string
	healthAddr string // empty when the binary lacks health_check

	cmd    *exec.Cmd
	path   string // its config file
	config []byte
	output *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // the process's exit status, once exited is closed
}

// startCollector writes cfg with fresh loopback ports, starts the collector
// and waits until it is ready. The collector is stopped with SIGTERM (and
// killed if it does not exit) when the test ends; its output is logged if
// the test failed.
func startCollector(t testing.TB, cfg collectorConfig) *collector {
	t.Helper()
	var lastOutput string
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := tryStartCollector(t, cfg, attempt)
		if err == nil {
			return c
		}
		lastOutput = c.output.String()
		if !strings.Contains(lastOutput, "address already in use") {
			t.Fatalf("start collector: %v\ncollector output:\n%s", err, lastOutput)
		}
		t.Logf("start collector, attempt %d: %v; retrying with other ports", attempt, err)
	}
	t.Fatalf("start collector: ports kept clashing\ncollector output:\n%s", lastOutput)
	return nil
}

func tryStartCollector(t testing.TB, cfg collectorConfig, attempt int) (*collector, error) {
	t.Helper()
	c := &collector{
		grpcAddr: freeAddr(t),
		httpAddr: freeAddr(t),
		output:   &syncBuffer{},
		exited:   make(chan struct{}),
	}
	if haveHealthCheck {
		c.healthAddr = freeAddr(t)
	}

	var yaml bytes.Buffer
	require.NoError(t, collectorTemplates.ExecuteTemplate(&yaml, "e2e.yaml", struct {
		collectorConfig
		GRPCAddr, HTTPAddr, HealthAddr string
		SlowThresholdMs                int
	}{cfg, c.grpcAddr, c.httpAddr, c.healthAddr, slowThresholdMs}))
	path := filepath.Join(t.TempDir(), fmt.Sprintf("config-%d.yaml", attempt))
	return c, c.launch(t, path, "", yaml.Bytes())
}

// launch writes config to path, starts the collector on it in dir (the
// test's working directory when empty), and waits until it is ready. The
// collector is stopped when the test ends.
func (c *collector) launch(t testing.TB, path, dir string, config []byte) error {
	t.Helper()
	require.NoError(t, os.WriteFile(path, config, 0o600))
	c.path, c.config = path, config
	args := []string{"--config", "file:" + path}
	if !bytes.Contains(config, []byte("telemetry:")) {
		// Without a telemetry section the collector serves its own
		// metrics on localhost:8888, which one collector of the many a
		// test run starts at once can hold: it would fail to start.
		args = append(args, "--set=service.telemetry.metrics.level=none")
	}
	c.cmd = exec.Command(collectorBin, args...)
	c.cmd.Dir = dir
	c.cmd.Stdout = c.output
	c.cmd.Stderr = c.output
	setChildAttrs(c.cmd)
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		if err := c.stop(15 * time.Second); err != nil {
			t.Errorf("stop collector: %v", err)
		}
		if t.Failed() {
			t.Logf("collector config %s:\n%s", path, config)
			t.Logf("collector output:\n%s", c.output.String())
		}
	})
	return c.waitReady(30 * time.Second)
}

// waitReady polls the health_check extension (or, without it, the OTLP
// ports) until the collector is ready.
func (c *collector) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-c.exited:
			if c.err == nil {
				return errors.New("collector exited with status 0 before it was ready")
			}
			return fmt.Errorf("collector exited before it was ready: %w", c.err)
		default:
		}
		if c.ready(client) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("collector not ready after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *collector) ready(client *http.Client) bool {
	if c.healthAddr != "" {
		resp, err := client.Get("http://" + c.healthAddr + "/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	for _, addr := range []string{c.grpcAddr, c.httpAddr} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close()
	}
	return true
}

// running reports whether the process has not exited.
func (c *collector) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// terminate sends SIGTERM.
func (c *collector) terminate() error {
	WaitCatchesSIGTERM(c.cmd.Process.Pid, 5*time.Second)
	return c.cmd.Process.Signal(syscall.SIGTERM)
}

// waitExit waits up to timeout for the process to exit and returns its
// exit status.
func (c *collector) waitExit(timeout time.Duration) (exited bool, exitErr error) {
	select {
	case <-c.exited:
		return true, c.err
	case <-time.After(timeout):
		return false, nil
	}
}

// stop sends SIGTERM and waits up to timeout before killing the process.
// It returns an error if the process had to be killed or exited uncleanly.
func (c *collector) stop(timeout time.Duration) error {
	if !c.running() {
		return nil // an exit status seen by a test is that test's business
	}
	if err := c.terminate(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	if ok, err := c.waitExit(timeout); ok {
		if err != nil {
			return fmt.Errorf("collector exited uncleanly after SIGTERM: %w", err)
		}
		return nil
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("collector did not exit within %s of SIGTERM; killed", timeout)
}

// usedPorts keeps ports handed out in this process so that parallel tests
// do not get the same one between closing the probe and binding it.
var (
	usedPortsMu sync.Mutex
	usedPorts   = map[int]bool{}
)

// freeAddr returns a 127.0.0.1 address with a port that was free. The
// port is below the kernel's ephemeral range (ip_local_port_range), so
// that no connection or ":0" listener of another test process running at
// the same time can take it between this probe and the collector's bind:
// with ports from ":0", a collector that failed to bind could only be
// started again on new ones, and not every test does that.
func freeAddr(t testing.TB) string {
	t.Helper()
	usedPortsMu.Lock()
	defer usedPortsMu.Unlock()
	lo, hi := portRange()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if usedPorts[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		require.NoError(t, lis.Close())
		usedPorts[port] = true
		return addr
	}
	t.Fatal("no free port found")
	return ""
}

// portRange is where freeAddr draws ports: [20000, hi), above the default
// ports that components bind when tests start them on their default
// configuration (4317, 4318, 13133, 13134: the generated lifecycle tests
// do, in other packages at the same time) and the fixed ports of test
// configs (14317, 16686), and below the ephemeral range (hi, 32768 when
// the kernel's cannot be read).
func portRange() (lo, hi int) {
	lo, hi = 20000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lo+1000 {
				hi = n
			}
		}
	}
	return lo, hi
}

// replaceAll replaces each key of from in s with its value, in one pass
// over s: a replacement is never matched again, so a fresh port such as
// "127.0.0.1:43175" survives a later key "127.0.0.1:4317" (replacing key
// by key, in the map's random order, broke such ports now and then). Where
// two keys match at the same place, the longer one wins. It fails when s,
// the text of file, lacks a key.
func replaceAll(t testing.TB, s string, from map[string]string, file string) string {
	t.Helper()
	keys := slices.SortedFunc(maps.Keys(from), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, old := range keys {
		require.Contains(t, s, old, "%s changed; update this test", file)
		pairs = append(pairs, old, from[old])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ctxFor returns a context that ends with the test or after timeout.
func ctxFor(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}
