//go:build !linux

package benchmarks

import "time"

// threadCPU is only implemented on Linux.
func threadCPU() time.Duration { return 0 }

// otherRunnableThreads is only implemented on Linux; elsewhere waitIdle
// relies on CPU time alone.
func otherRunnableThreads() (int, bool) { return 0, false }
