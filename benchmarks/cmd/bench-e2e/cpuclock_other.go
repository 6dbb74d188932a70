//go:build !linux

package main

import (
	"errors"
	"time"
)

// processClock is Linux only; elsewhere procCPU falls back to /proc/PID/stat.
func processClock(int) (time.Duration, error) {
	return 0, errors.New("process CPU clock: Linux only")
}
