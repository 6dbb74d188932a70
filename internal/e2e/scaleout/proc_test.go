//go:build linux

package scaleout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/e2e"
)

// templates are the agent and gateway configurations of testdata.
var templates = template.Must(template.New("").Funcs(template.FuncMap{"join": strings.Join}).
	ParseGlob(filepath.Join("testdata", "*.yaml")))

// members is what the members block of the agent and of a gateway's
// cluster block say: Static, or else the dns form.
type members struct {
	Static   []string
	DNS      string // the test DNS server's host:port
	Hostname string
	Port     int
	Interval time.Duration
}

// gatewayConfig is what a scenario chooses of a gateway's configuration.
type gatewayConfig struct {
	members
	Name            string
	Addr            string // OTLP gRPC host:port, also the cluster block's self
	HealthAddr      string
	Host            string // Addr's host
	MetricsPort     int    // the Prometheus endpoint of its self-metrics on Host; none when 0
	SinkAddr        string
	Quiet, MaxWait  time.Duration
	SlowThresholdMs int
	Processor       bool // the otlp receiver and the tailsift processor, else the tailsift receiver
	Cluster         bool // render the cluster block
	Handover        bool // cluster::handover::enabled
	Drain, Settle   time.Duration
}

// agentConfig is the agent's configuration.
type agentConfig struct {
	members
	Addr       string
	HealthAddr string
}

// proc is a running collector: the agent or one gateway.
type proc struct {
	name   string
	addr   string // OTLP gRPC
	health string // health_check

	cmd    *exec.Cmd
	log    string        // the file its stdout and stderr go to
	exited chan struct{} // closed once the process has exited
	err    error         // its exit status, once exited is closed
}

// startProc renders the template named tmpl with data, starts the collector
// on it and waits until it is ready. The process is stopped when the test
// ends (SIGTERM, then SIGKILL); its output is logged if the test failed.
// It does not end the test, so that gateways may start in parallel.
func startProc(t testing.TB, tmpl, name, addr, health string, data any) (*proc, error) {
	var cfg bytes.Buffer
	if err := templates.ExecuteTemplate(&cfg, tmpl, data); err != nil {
		return nil, fmt.Errorf("render %s for %s: %w", tmpl, name, err)
	}
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("write the config of %s: %w", name, err)
	}
	p := &proc{name: name, addr: addr, health: health, log: strings.TrimSuffix(path, ".yaml") + ".log", exited: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", name, err)
	}
	defer func() { _ = out.Close() }() // the child has its own descriptor
	p.cmd = exec.Command(collectorBin, "--config", "file:"+path)
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	setChildAttrs(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t, 20*time.Second)
		if t.Failed() {
			t.Logf("%s config:\n%s\n%s output (last 4 KiB):\n%s", name, cfg.String(), name, p.tail(4096))
		}
	})
	if err := p.waitReady(30 * time.Second); err != nil {
		return nil, fmt.Errorf("%s: %w\noutput:\n%s", name, err, p.tail(4096))
	}
	return p, nil
}

// waitReady polls the health_check endpoint until it answers 200, which
// it does once every pipeline, and so the receivers, has started.
func (p *proc) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %w", p.err)
		default:
		}
		resp, err := client.Get("http://" + p.health + "/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("not ready after %s", timeout)
}

// signal sends sig unless the process has exited.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	if sig == syscall.SIGTERM {
		e2e.WaitCatchesSIGTERM(p.cmd.Process.Pid, 5*time.Second)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("%s: send %v: %v", p.name, sig, err)
	}
}

// waitExit waits up to timeout for the process to exit; it fails the test
// if it did not, or exited with an error after a SIGTERM (clean is true).
func (p *proc) waitExit(t testing.TB, timeout time.Duration, clean bool) {
	select {
	case <-p.exited:
		if clean && p.err != nil {
			t.Errorf("%s exited uncleanly after SIGTERM: %v\noutput (last 4 KiB):\n%s", p.name, p.err, p.tail(4096))
		}
	case <-time.After(timeout):
		t.Errorf("%s did not exit within %s", p.name, timeout)
	}
}

// stop sends SIGTERM and kills the process if it has not exited after
// timeout; a process that a scenario already stopped is left alone.
func (p *proc) stop(t testing.TB, timeout time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, timeout)
	}
}

// tail returns the last n bytes of the process's output.
func (p *proc) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(output unreadable: %v)", err)
	}
	return string(b)
}

// ports are the ports handed out: each was free on every address a
// scenario may use, and none is handed out twice in this test process.
var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a TCP port that is free on each of hosts.
func freePort(t testing.TB, hosts ...string) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		lis, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		require.NoError(t, err)
		port := lis.Addr().(*net.TCPAddr).Port
		free := !ports[port]
		for _, h := range hosts[1:] {
			if !free {
				break
			}
			other, err := net.Listen("tcp", net.JoinHostPort(h, fmt.Sprint(port)))
			if err != nil {
				free = false
				break
			}
			_ = other.Close()
		}
		_ = lis.Close()
		if free {
			ports[port] = true
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// setChildAttrs makes the kernel kill the collector if the test process
// dies without stopping it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
