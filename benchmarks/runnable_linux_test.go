//go:build linux

package benchmarks

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling OS thread, so the cost of
// polling can be excluded from the idle test.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	d, _ := rusage(rusageThread)
	return d
}

// otherRunnableThreads counts this process's threads, other than the
// calling one, that are running or waiting for a CPU (state R in
// /proc/self/task/*/stat). On a loaded machine a starved goroutine uses no
// CPU for a while but its thread stays runnable, so this keeps waitIdle from
// mistaking starvation for idleness. The caller must hold its OS thread
// (runtime.LockOSThread) for the exclusion to be meaningful.
func otherRunnableThreads() (int, bool) {
	self := strconv.Itoa(syscall.Gettid())
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, false
	}
	n := 0
	for _, t := range tasks {
		if t.Name() == self {
			continue
		}
		stat, err := os.ReadFile("/proc/self/task/" + t.Name() + "/stat")
		if err != nil {
			continue // thread exited
		}
		// Format: "tid (comm) S ..."; comm may contain spaces or parens.
		i := bytes.LastIndexByte(stat, ')')
		if i >= 0 && i+2 < len(stat) && stat[i+2] == 'R' {
			n++
		}
	}
	return n, true
}
