package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// handedOut holds every port freePorts has returned in this process, so
// that the runs of a concurrent round, which ask for theirs at the same
// time, never get the same one (a port is free again once its listener here
// closes).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// maxPortTries bounds freePorts' listens: a run takes 7 ports, and a
// bench-e2e process hands out a few hundred of the ephemeral range's
// thousands.
const maxPortTries = 1000

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	handedOut.Lock()
	defer handedOut.Unlock()
	var out []int
	for len(out) < n {
		if len(ls) >= maxPortTries {
			return nil, fmt.Errorf("no %d loopback ports not handed out before in %d tries", n, maxPortTries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l) // held until all n are found: no port twice
		if p := l.Addr().(*net.TCPAddr).Port; !handedOut.ports[p] {
			handedOut.ports[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// start runs bin with args, pinned to cpu when taskset is available
// (taskset execs the program, so the PID is the program's own), with
// extraEnv added to the environment.
func (e *env) start(cpu int, logPath string, extraEnv []string, bin string, args ...string) (*exec.Cmd, error) {
	name := bin
	if e.taskset != "" {
		args = append([]string{"-c", strconv.Itoa(cpu), bin}, args...)
		name = e.taskset
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(extraEnv) > 0 {
		cmd.Env = append(os.Environ(), extraEnv...)
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	_ = f.Close() // the child has its own descriptor
	e.mu.Lock()
	if e.procs == nil {
		e.procs = map[int]*exec.Cmd{}
	}
	e.procs[cmd.Process.Pid] = cmd
	e.mu.Unlock()
	return cmd, nil
}

// waiter reaps cmd once; done is closed when it has exited.
type waiter struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (e *env) watch(cmd *exec.Cmd) *waiter {
	w := &waiter{cmd: cmd, done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		e.mu.Lock()
		delete(e.procs, cmd.Process.Pid)
		e.mu.Unlock()
		close(w.done)
	}()
	return w
}

func (w *waiter) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL. It reports how long
// the process took and whether it had to be killed.
func (w *waiter) stop(grace time.Duration) (time.Duration, bool) {
	t := time.Now()
	if w.exited() {
		return 0, false
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		return time.Since(t), false
	case <-time.After(grace):
		_ = w.cmd.Process.Kill()
		<-w.done
		return time.Since(t), true
	}
}

// killAll kills every process this runner started that is still running
// (by PID; used when the runner is interrupted).
func (e *env) killAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for pid, c := range e.procs {
		_ = c.Process.Kill()
		delete(e.procs, pid)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// httpGet sends a GET for url and returns the response if it is 200 OK;
// the caller closes its body.
func httpGet(ctx context.Context, client *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// httpOK reports whether a GET for url answers 200 OK.
func httpOK(ctx context.Context, url string) bool {
	resp, err := httpGet(ctx, httpClient, url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return true
}

func waitFor(ctx context.Context, timeout time.Duration, dead func() bool, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return nil
		}
		if dead != nil && dead() {
			return errors.New("process exited")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type sinkStats struct {
	Requests    int64   `json:"requests"`
	Spans       int64   `json:"spans"`
	IdleSeconds float64 `json:"idle_seconds"`
}

func getSinkStats(ctx context.Context, url string) (*sinkStats, error) {
	resp, err := httpGet(ctx, httpClient, url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var s sinkStats
	return &s, json.NewDecoder(resp.Body).Decode(&s)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func firstError(path string) string {
	b, _ := os.ReadFile(path)
	n := 0
	first := ""
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "\terror\t") {
			continue
		}
		n++
		if first != "" {
			continue
		}
		// zap console format: time, level, caller, message, then JSON fields.
		f := strings.SplitN(l, "\t", 5)
		msg := l
		if len(f) >= 4 {
			msg = f[3]
		}
		if len(f) == 5 {
			var fields map[string]any
			if json.Unmarshal([]byte(f[4]), &fields) == nil {
				for _, k := range []string{"error", "rejected_items", "otelcol.component.id"} {
					if v, ok := fields[k]; ok {
						msg += fmt.Sprintf(" %s=%v", k, v)
					}
				}
			}
		}
		if len(msg) > 400 {
			msg = msg[:400] + "…"
		}
		first = msg
	}
	return fmt.Sprintf("%d error lines, first: %s", n, first)
}

func fetchProfile(ctx context.Context, port, seconds int, out string) error {
	c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	resp, err := httpGet(ctx, c, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, seconds))
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
