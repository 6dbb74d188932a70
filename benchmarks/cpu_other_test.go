//go:build !unix

package benchmarks

import "time"

// processCPU is not implemented on this platform; cpu-ns/span reads 0 and
// waitIdle falls back to a fixed settle time.
func processCPU() (time.Duration, bool) { return 0, false }
