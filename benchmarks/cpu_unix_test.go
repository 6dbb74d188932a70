//go:build unix

package benchmarks

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time consumed by this process.
func processCPU() (time.Duration, bool) {
	return rusage(syscall.RUSAGE_SELF)
}

func rusage(who int) (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
