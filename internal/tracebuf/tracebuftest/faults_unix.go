//go:build unix

package tracebuftest

import "syscall"

// MinorFaults is the process's minor page faults so far (a first write to
// a page of freshly mapped memory is one), for benchmarks to report per
// span.
func MinorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}
