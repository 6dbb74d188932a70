//go:build !linux

package timerslack

import (
	"errors"
	"time"
)

var errUnsupported = errors.New("timer slack is set on Linux only")

// Current returns the calling thread's timer slack: on this system, an
// error.
func Current() (time.Duration, error) { return 0, errUnsupported }

// Ensure checks v (the value of EnvVar) and does nothing else: timer slack
// is Linux's.
func Ensure(v string) Outcome {
	if _, err := Target(v); err != nil {
		return Outcome{Err: err}
	}
	return Outcome{}
}
