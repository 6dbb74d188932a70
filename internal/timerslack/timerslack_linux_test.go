package timerslack

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
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

// TestEnsureHelper is not a test: run by helper, it calls Ensure the way
// the apply package does, in a process whose starts it counts.
func TestEnsureHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("runs as the helper process of the other tests")
	}
	runtime.LockOSThread() // as init's main goroutine is
	cur, err := Current()
	require.NoError(t, err)
	fmt.Printf("start pid=%d slack=%d\n", os.Getpid(), cur)
	out := Ensure(os.Getenv(EnvVar))
	_, marker := os.LookupEnv(execMarker)
	fmt.Printf("result pid=%d slack=%d reexecuted=%v marker=%v err=%v args=%d\n",
		os.Getpid(), out.Slack, out.Reexecuted, marker, out.Err, len(os.Args))
}

type helperRun struct {
	starts  []string
	result  string
	slackNS []int64
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
			_, err := fmt.Sscanf(line, "start pid=%d slack=%d", &pid, &ns)
			require.NoError(t, err, line)
			r.slackNS = append(r.slackNS, ns)
		case strings.HasPrefix(line, "result "):
			require.Empty(t, r.result, "two results:\n%s", out.String())
			r.result = line
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
// no loop, even where the kernel would not keep the slack across execve.
func TestEnsureMarkerStopsALoop(t *testing.T) {
	r := helper(t, 0, EnvVar+"=2ms", execMarker+"=1")
	require.Len(t, r.starts, 1, "%v", r.starts)
	assert.Contains(t, r.result, "reexecuted=true marker=false err=<nil>")
}
