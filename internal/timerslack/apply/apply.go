// Package apply gives the process the timer slack of TAILSIFT_TIMER_SLACK
// (timerslack.Default when unset) as its first act: importing it, for its
// init function, may execute the process's binary again (see
// timerslack.Ensure). Only a main package imports it: a test binary that
// imported it would start over too.
//
// Its init does not run first: Go initializes packages in import-path
// order where their dependencies allow, and in the collector some 135
// packages' inits run before it (GODEBUG=inittrace=1), none of which opens
// a file without O_CLOEXEC, a socket, or writes anything. What is repeated
// (the runtime's start, those inits) adds 20-25 ms to the collector's
// start on the benchmark VM.
package apply

import (
	"fmt"
	"os"

	"github.com/tailsift/tailsift/internal/timerslack"
)

func init() {
	out := timerslack.Ensure(os.Getenv(timerslack.EnvVar))
	if out.Err != nil {
		// No logger exists yet: the collector's own comes with its
		// config. A slack that could not be set costs CPU, not data.
		fmt.Fprintf(os.Stderr, "tailsift: timer slack left at %v: %v\n", out.Slack, out.Err)
	}
}
