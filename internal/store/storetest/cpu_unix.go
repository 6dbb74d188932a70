//go:build unix

package storetest

import (
	"syscall"
	"time"
)

// CPU returns the user+system CPU time this process has used, or 0 where
// it cannot be read.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
