//go:build !linux

package e2e

import (
	"os/exec"
	"time"
)

func setChildAttrs(*exec.Cmd) {}

func waitCatchesSIGTERM(int, time.Duration) {}
