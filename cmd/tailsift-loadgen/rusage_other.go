//go:build !unix

package main

import "time"

type rusage struct{ user, sys time.Duration }

func (a rusage) sub(b rusage) rusage { return rusage{a.user - b.user, a.sys - b.sys} }

// getrusage is not available here; CPU per span reports 0.
func getrusage() rusage { return rusage{} }
