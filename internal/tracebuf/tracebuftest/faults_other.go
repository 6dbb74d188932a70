//go:build !unix

package tracebuftest

// MinorFaults is 0 where getrusage is not available.
func MinorFaults() int64 { return 0 }
