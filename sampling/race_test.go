//go:build race

package sampling_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// code that pools (regexp) allocates now and then under -race.
const raceEnabled = true
