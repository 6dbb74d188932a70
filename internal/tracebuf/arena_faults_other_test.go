//go:build !unix

package tracebuf

func minorFaults() int64 { return 0 }
