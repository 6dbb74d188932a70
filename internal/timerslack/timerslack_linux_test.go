package timerslack

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary run TestEnsureHelper as a process of its
// own, which prints one "start" line per start of the process and one
// "result" line.
const helperEnv = "TIMERSLACK_TEST_HELPER"

// selfEnv, set for the helper, replaces the binary Ensure executes: a path
// that does not exist makes execve fail.
const selfEnv = "TIMERSLACK_TEST_SELF"

// TestEnsureHelper is not a test: run by helper, it calls Ensure the way
// the apply package does, in a process whose starts it counts.
func TestEnsureHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("runs as the helper process of the other tests")
	}
	runtime.LockOSThread() // as init's main goroutine is
	if v := os.Getenv(selfEnv); v != "" {
		self = v
	}
	cur, err := Current()
	require.NoError(t, err)
	fmt.Printf("start pid=%d slack=%d comm=%s\n", os.Getpid(), cur, threadsOf(t, "comm"))
	out := Ensure(os.Getenv(EnvVar))
	_, marker := os.LookupEnv(execMarker)
	fmt.Printf("result pid=%d slack=%d reexecuted=%v marker=%v err=%v args=%d\n",
		os.Getpid(), out.Slack, out.Reexecuted, marker, out.Err, len(os.Args))
	fmt.Printf("threads slack=%s comm=%s\n", threadsOf(t, "timerslack_ns"), threadsOf(t, "comm"))
}

// threadsOf returns the distinct values of /proc/<tid>/<file> over the
// process's threads, sorted and joined with commas.
func threadsOf(t *testing.T, file string) string {
	tids, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, tid := range tids {
		// /proc/<tid>/: the thread's own timerslack_ns (the task
		// directories have none).
		raw, err := os.ReadFile("/proc/" + tid.Name() + "/" + file)
		if os.IsNotExist(err) {
			continue // the thread has exited
		}
		require.NoError(t, err)
		seen[strings.TrimSpace(string(raw))] = true
	}
	vals := make([]string, 0, len(seen))
	for v := range seen {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	return strings.Join(vals, ",")
}

type helperRun struct {
	starts  []string
	result  string
	slackNS []int64
	comms   []string // per start: the distinct names of its threads
	// threads is the helper's "threads" line: the distinct slacks and
	// names of its threads after Ensure returned.
	threads string
}

// helper runs TestEnsureHelper in a new process with env added, after
// setting the slack of the thread that starts it to parent (0: as it is).
func helper(t *testing.T, parent time.Duration, env ...string) helperRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestEnsureHelper$", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=1"}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The child inherits the slack of the thread that clones it: set it
	// on this one, and start the child from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if parent > 0 {
		was, err := Current()
		require.NoError(t, err)
		require.NoError(t, unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(parent), 0, 0, 0))
		defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(was), 0, 0, 0) }()
	}
	require.NoError(t, cmd.Run(), out.String())
	var r helperRun
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "start "):
			r.starts = append(r.starts, line)
			var pid int
			var ns int64
			var comm string
			_, err := fmt.Sscanf(line, "start pid=%d slack=%d comm=%s", &pid, &ns, &comm)
			require.NoError(t, err, line)
			r.slackNS = append(r.slackNS, ns)
			r.comms = append(r.comms, comm)
		case strings.HasPrefix(line, "result "):
			require.Empty(t, r.result, "two results:\n%s", out.String())
			r.result = line
		case strings.HasPrefix(line, "threads "):
			r.threads = line
		}
	}
	require.NotEmpty(t, r.result, out.String())
	return r
}

func TestEnsureStartsOverOnceWithTheSlack(t *testing.T) {
	r := helper(t, 0, EnvVar+"=3ms")
	require.Len(t, r.starts, 2, "the process starts over once: %v", r.starts)
	assert.Less(t, r.slackNS[0], int64(3*time.Millisecond), "the first start has the parent's slack")
	assert.Equal(t, int64(3*time.Millisecond), r.slackNS[1], "the second start has the slack from its first thread on")
	var pid1, pid2 int
	_, err := fmt.Sscanf(r.starts[0], "start pid=%d", &pid1)
	require.NoError(t, err)
	_, err = fmt.Sscanf(r.starts[1], "start pid=%d", &pid2)
	require.NoError(t, err)
	assert.Equal(t, pid1, pid2, "execve keeps the process")
	assert.Equal(t, fmt.Sprintf("result pid=%d slack=%d reexecuted=true marker=false err=<nil> args=4", pid1, 3*time.Millisecond), r.result,
		"the marker is gone from the environment the collector sees, the arguments are kept")
	assert.True(t, strings.HasPrefix(r.threads, fmt.Sprintf("threads slack=%d comm=", 3*time.Millisecond)),
		"every thread of the second start has the slack (sysmon included): %s", r.threads)
}

// The process keeps its name (/proc/<pid>/comm: ps, top, pgrep, killall,
// process exporters): execve of /proc/self/exe would name it "exe".
func TestEnsureKeepsTheProcessName(t *testing.T) {
	r := helper(t, 0, EnvVar+"=3ms")
	require.Len(t, r.starts, 2, "%v", r.starts)
	name := r.comms[0]
	require.NotContains(t, name, ",", "the first start's threads share one name")
	assert.Equal(t, fmt.Sprintf("threads slack=%d comm=%s", 3*time.Millisecond, name), r.threads,
		"the second start's threads have the first's name")
}

// When execve fails the process runs on as it was: every thread with the
// slack it started with, the one that called Ensure included, so that
// /proc/<pid>/timerslack_ns does not show a slack that sysmon lacks.
func TestEnsureExecFailureLeavesTheSlack(t *testing.T) {
	r := helper(t, 0, EnvVar+"=3ms", selfEnv+"=/nonexistent/tailsift")
	require.Len(t, r.starts, 1, "%v", r.starts)
	was := r.slackNS[0]
	require.Less(t, was, int64(3*time.Millisecond))
	assert.Contains(t, r.result, fmt.Sprintf("slack=%d reexecuted=false marker=false err=execve(/nonexistent/tailsift): no such file or directory", was),
		"the outcome says the slack the process runs with")
	assert.Equal(t, fmt.Sprintf("threads slack=%d comm=%s", was, r.comms[0]), r.threads,
		"no thread is left with the slack Ensure set")
}

func TestEnsureDefault(t *testing.T) {
	r := helper(t, 0, EnvVar+"=")
	require.Len(t, r.starts, 2)
	assert.Equal(t, int64(Default), r.slackNS[1])
}

// A slack the process already has, or a higher one, stays, and nothing
// starts over.
func TestEnsureKeepsAHigherSlack(t *testing.T) {
	r := helper(t, 5*time.Millisecond, EnvVar+"=1ms")
	require.Len(t, r.starts, 1, "%v", r.starts)
	assert.Equal(t, int64(5*time.Millisecond), r.slackNS[0])
	assert.Contains(t, r.result, fmt.Sprintf("slack=%d reexecuted=false marker=false err=<nil>", 5*time.Millisecond))
}

func TestEnsureOff(t *testing.T) {
	r := helper(t, 0, EnvVar+"=0")
	require.Len(t, r.starts, 1, "%v", r.starts)
	assert.Contains(t, r.result, "reexecuted=false marker=false err=<nil>")
}

func TestEnsureInvalidValueStartsNothing(t *testing.T) {
	r := helper(t, 0, EnvVar+"=fast")
	require.Len(t, r.starts, 1, "%v", r.starts)
	assert.Contains(t, r.result, `reexecuted=false marker=false err=TAILSIFT_TIMER_SLACK: time: invalid duration "fast"`)
	assert.NotContains(t, r.result, "slack=0 ", "the slack it was left at")
}

// A process started with the marker never starts over, whatever its slack:
// no loop, even where the kernel would not keep the slack across execve;
// it says so. A marker set by hand renames nothing.
func TestEnsureMarkerStopsALoop(t *testing.T) {
	r := helper(t, 0, EnvVar+"=2ms", execMarker+"=1")
	require.Len(t, r.starts, 1, "%v", r.starts)
	assert.Contains(t, r.result, fmt.Sprintf("slack=%d reexecuted=true marker=false err=slack reads %v after execve, not the 2ms set before it",
		r.slackNS[0], time.Duration(r.slackNS[0])))
	assert.Equal(t, fmt.Sprintf("threads slack=%d comm=%s", r.slackNS[0], r.comms[0]), r.threads)
}
