//go:build unix

package tracebuf

import "syscall"

// minorFaults is the process's minor page faults so far: a first write to
// a page of freshly mapped memory is one.
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}
