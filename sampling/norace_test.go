//go:build !race

package sampling_test

const raceEnabled = false
