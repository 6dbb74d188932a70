//go:build race

package tracebuf

// raceEnabled: the race detector slows the workload replay about tenfold.
const raceEnabled = true
