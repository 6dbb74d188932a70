// Package timerslack gives the collector's process a timer slack (Linux's
// prctl PR_SET_TIMERSLACK): how late the kernel may end a thread's timed
// sleep, so that it can wake the thread together with other work instead
// of on its own.
//
// Why: the Go runtime's sysmon thread sleeps while every P is idle, and the
// first syscall after that wakes it; it then polls every 20 µs until the
// process is idle again (runtime/proc.go, sysmon). A collector at a few
// percent of a core wakes from idle a hundred times a second or more, and
// each of those 20 µs sleeps ends in a context switch: about a tenth of the
// fast path's CPU at 20 000 spans/s (benchmarks/README.md, "Timer slack").
// With a slack of 1 ms each poll lasts up to 1 ms instead, and the runtime's
// timers (the shard's decisions, batch timeouts) fire up to 1 ms late.
//
// A thread's slack is set for itself and inherited by the threads it
// creates; sysmon is created before any package's init runs, so the slack
// has to be in place before the process starts. Ensure therefore sets it on
// the calling thread and executes the process's own binary again, with the
// same arguments and environment (the slack is kept across execve), once.
package timerslack

import (
	"fmt"
	"time"
)

// EnvVar names the environment variable that sets the slack: a Go duration
// ("1ms", "500us"), or "0" for the operating system's default (no
// re-execution). Unset, the slack is Default.
const EnvVar = "TAILSIFT_TIMER_SLACK"

// Default is the slack when EnvVar is unset.
const Default = time.Millisecond

// Max is the largest slack EnvVar may ask for: a larger one would delay
// decisions and batch timeouts by a visible fraction of their 50 ms grid.
const Max = 50 * time.Millisecond

// execMarker is set in the environment of the re-executed process, so that
// it never executes itself again, whatever its slack reads; its value is
// the process's name before execve, which the new process takes back.
// Ensure removes it from the environment the collector sees (Go's copy:
// /proc/<pid>/environ still shows it).
const execMarker = "TAILSIFT_TIMER_SLACK_EXEC"

// Target is the slack that the value v of EnvVar asks for: Default when v is
// empty, 0 when the operating system's default should stay.
func Target(v string) (time.Duration, error) {
	if v == "" {
		return Default, nil
	}
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", EnvVar, err)
	}
	if d < 0 || d > Max {
		return 0, fmt.Errorf("%s: %v is outside 0..%v", EnvVar, d, Max)
	}
	return d, nil
}

// Outcome says what Ensure did.
type Outcome struct {
	// Slack is the calling thread's slack when Ensure returned (0 where
	// it cannot be read).
	Slack time.Duration
	// Reexecuted is true in the process that Ensure started: its slack was
	// set before it started.
	Reexecuted bool
	// Err is why the slack could not be set, or nil.
	Err error
}
