//go:build !linux

package e2e

import (
	"os/exec"
	"testing"
	"time"
)

func setChildAttrs(*exec.Cmd) {}

// assertTimerSlack: timer slack is set on Linux only.
func assertTimerSlack(*testing.T, *exec.Cmd, time.Duration) {}
