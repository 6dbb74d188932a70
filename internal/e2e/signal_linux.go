package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WaitCatchesSIGTERM waits, up to timeout, until process pid catches
// SIGTERM (its SigCgt in /proc). The collector reports ready (health
// check) a moment before it installs its SIGTERM handler (otelcol's Run
// calls signal.Notify after the service started), and a SIGTERM in between
// ends it by the signal's default action instead of a graceful shutdown.
func WaitCatchesSIGTERM(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if catches, err := catchesSignal(pid, syscall.SIGTERM); err != nil || catches {
			return // gone, or no /proc: nothing to wait for
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func catchesSignal(pid int, sig syscall.Signal) (bool, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				return false, err
			}
			return mask&(1<<(uint(sig)-1)) != 0, nil
		}
	}
	return false, fmt.Errorf("no SigCgt in /proc/%d/status", pid)
}
