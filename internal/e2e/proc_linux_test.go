package e2e

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill the collector if the test process
// dies without stopping it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
