// Package apply gives the process the timer slack of TAILSIFT_TIMER_SLACK
// (timerslack.Default when unset) as its first act: importing it, for its
// init function, may execute the process's binary again (see
// timerslack.Ensure). Only a main package imports it: a test binary that
// imported it would start over too.
//
// Its init runs early: it depends on little, and Go initializes packages
// in import-path order where their dependencies allow, so that the start
// it may repeat costs a few ms.
package apply

import (
	"fmt"
	"os"

	"github.com/tailsift/tailsift/internal/timerslack"
)

// Result is what the process's start did about its timer slack.
var Result timerslack.Outcome

func init() {
	Result = timerslack.Ensure(os.Getenv(timerslack.EnvVar))
	if Result.Err != nil {
		// No logger exists yet: the collector's own comes with its
		// config. A slack that could not be set costs CPU, not data.
		fmt.Fprintf(os.Stderr, "tailsift: timer slack left at %v: %v\n", Result.Slack, Result.Err)
	}
}
