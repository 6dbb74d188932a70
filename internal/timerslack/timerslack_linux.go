package timerslack

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// self is the running binary, as the kernel knows it: a path that stays
// right when the process was started through a relative path or a symlink.
// A variable for the tests only, which make execve fail with it.
var self = "/proc/self/exe"

// Current returns the calling thread's timer slack.
func Current() (time.Duration, error) {
	ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("prctl(PR_GET_TIMERSLACK): %w", err)
	}
	return time.Duration(ns), nil
}

// Ensure gives the process the slack that v (the value of EnvVar) asks for.
// When the calling thread's slack is lower, it sets the slack and executes
// the process's binary again with os.Args and the environment: Ensure does
// not return then. Otherwise, and when anything fails, it returns what it
// found; a failure leaves the process running as it was.
//
// Call it from an init function (the main goroutine is on the main thread
// there), before the process starts anything: apply does.
func Ensure(v string) Outcome {
	cur, err := Current()
	if err != nil {
		return Outcome{Err: err}
	}
	target, err := Target(v)
	if err != nil {
		return Outcome{Slack: cur, Err: err}
	}
	if _, again := os.LookupEnv(execMarker); again {
		_ = os.Unsetenv(execMarker)
		return Outcome{Slack: cur, Reexecuted: true}
	}
	if target == 0 || cur >= target {
		return Outcome{Slack: cur}
	}
	// prctl and execve must run on the same thread: the slack is the
	// thread's, and execve keeps the calling thread's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(target), 0, 0, 0); err != nil {
		return Outcome{Slack: cur, Err: fmt.Errorf("prctl(PR_SET_TIMERSLACK, %d): %w", target, err)}
	}
	if got, err := Current(); err != nil || got != target {
		return Outcome{Slack: got, Err: errors.Join(err, fmt.Errorf("slack reads %v after setting %v", got, target))}
	}
	env := append(os.Environ(), execMarker+"=1")
	err = syscall.Exec(self, os.Args, env)
	// Only a failed exec gets here. This thread keeps the slack; the
	// runtime's other threads do not.
	return Outcome{Slack: target, Err: fmt.Errorf("execve(%s): %w", self, err)}
}
