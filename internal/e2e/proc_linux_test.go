package e2e

import (
	"fmt"
	"os"
	"os/exec"
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

// assertTimerSlack checks the timer slack of the collector's process
// (internal/timerslack: the binary sets it before it starts).
func assertTimerSlack(t *testing.T, pid int, want time.Duration) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", pid))
	require.NoError(t, err)
	ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	require.NoError(t, err)
	assert.Equal(t, want, time.Duration(ns), "timer slack of the collector, pid %d", pid)
}
