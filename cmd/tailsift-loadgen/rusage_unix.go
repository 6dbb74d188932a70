//go:build unix

package main

import (
	"syscall"
	"time"
)

type rusage struct{ user, sys time.Duration }

func (a rusage) sub(b rusage) rusage { return rusage{a.user - b.user, a.sys - b.sys} }

// getrusage returns the process's own CPU time so far.
func getrusage() rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return rusage{}
	}
	return rusage{
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
	}
}
