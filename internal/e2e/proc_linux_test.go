package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setChildAttrs makes the kernel kill the collector if the test process
// dies without stopping it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// assertTimerSlack checks the timer slack of every thread of the
// collector's process (internal/timerslack: the binary sets it before it
// starts), not only the main thread's, which /proc/<pid>/timerslack_ns
// shows: that one has the slack even when the binary could not execute
// itself again and sysmon runs without it. It checks the process's name
// too, which executing /proc/self/exe would change to "exe".
func assertTimerSlack(t *testing.T, cmd *exec.Cmd, want time.Duration) {
	t.Helper()
	pid := cmd.Process.Pid
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(t, err)
	for _, tid := range tids {
		// /proc/<tid>/: the task directories have no timerslack_ns.
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%s/timerslack_ns", tid.Name()))
		if os.IsNotExist(err) {
			continue // the thread has exited
		}
		require.NoError(t, err)
		ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		require.NoError(t, err)
		assert.Equal(t, want, time.Duration(ns), "timer slack of thread %s of the collector, pid %d", tid.Name(), pid)
	}
	// The kernel names a process after the last element of the path it
	// was executed by, up to 15 bytes.
	name := filepath.Base(cmd.Path)
	if len(name) > 15 {
		name = name[:15]
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	require.NoError(t, err)
	assert.Equal(t, name, strings.TrimSpace(string(comm)), "the collector's process name")
}
