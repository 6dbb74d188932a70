//go:build !unix

package storetest

import "time"

// CPU returns 0: the process's CPU time is not read on this platform.
func CPU() time.Duration { return 0 }
