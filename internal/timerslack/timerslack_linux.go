package timerslack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

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
// found; a failure leaves the process running as it was, every thread with
// the slack it had. The new process, told by the marker, removes it from
// its environment and gives its threads the name the process had (execve
// of /proc/self/exe names them "exe").
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
	if name, again := os.LookupEnv(execMarker); again {
		_ = os.Unsetenv(execMarker)
		restoreName(name)
		out := Outcome{Slack: cur, Reexecuted: true}
		if target > 0 && cur < target {
			out.Err = fmt.Errorf("slack reads %v after execve, not the %v set before it", cur, target)
		}
		return out
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
		return Outcome{Slack: restore(cur), Err: errors.Join(err, fmt.Errorf("slack reads %v after setting %v", got, target))}
	}
	// The marker carries the process's name: execve names the process
	// after the path it executes ("exe"), and the new process renames
	// itself back (restoreName).
	env := append(os.Environ(), execMarker+"="+threadName())
	err = syscall.Exec(self, os.Args, env)
	// Only a failed exec gets here. The process runs on as it was: this
	// thread gives the slack back, which the runtime's other threads (sysmon)
	// do not have, and the threads it starts from now on would inherit.
	return Outcome{Slack: restore(cur), Err: fmt.Errorf("execve(%s): %w", self, err)}
}

// restore sets the calling thread's slack back to was, and returns the
// slack it reads then.
func restore(was time.Duration) time.Duration {
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(was), 0, 0, 0)
	got, _ := Current()
	return got
}

// threadName returns the calling thread's name (comm), "" where it cannot
// be read.
func threadName() string {
	var buf [16]byte // TASK_COMM_LEN
	if err := unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&buf[0])), 0, 0, 0); err != nil {
		return ""
	}
	return unix.ByteSliceToString(buf[:])
}

// restoreName gives the process's threads the name the process had before
// it executed self: execve named them after self's last element. ps, top,
// pgrep, killall and process exporters read it (/proc/<pid>/comm). The
// runtime started its threads (sysmon's among them) before init, from the
// renamed main thread; those it starts later copy their starter's name, so
// a pass that finds a thread it has not renamed yet is repeated. Best
// effort: a name that cannot be set stays "exe".
func restoreName(name string) {
	if name == "" || threadName() != filepath.Base(self) {
		return // not a start by Ensure (a marker set by hand)
	}
	// This thread (the main one, whose name /proc/<pid>/comm shows) by
	// prctl: /proc/self/task/*/comm belongs to root in a process that is
	// not dumpable (set-user-ID, file capabilities).
	name0 := append([]byte(name), 0)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name0[0])), 0, 0, 0)
	for range 3 {
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		renamed := false
		for _, tid := range tids {
			comm := "/proc/self/task/" + tid.Name() + "/comm"
			raw, err := os.ReadFile(comm)
			if err != nil || strings.TrimSuffix(string(raw), "\n") == name {
				continue
			}
			// A thread group's threads may rename each other (comm_write).
			if os.WriteFile(comm, []byte(name), 0) == nil {
				renamed = true
			}
		}
		if !renamed {
			return
		}
	}
}
