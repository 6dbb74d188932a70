//go:build !race

package tracebuf

const raceEnabled = false
