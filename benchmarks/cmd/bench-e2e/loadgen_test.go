package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadgenTick: by default every loadgen sends each request at its
// scheduled time (--tick 1ms), as independent clients do, not in the
// loadgen's own 50 ms clumps; -loadgen-tick sets it, and 0 is refused,
// naming the flag.
func TestLoadgenTick(t *testing.T) {
	base := []string{"-mode", "quick", "-sat=false", "-rate", "1000"}
	o, err := parseOptions(base, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, time.Millisecond, o.LoadgenTick)
	o, err = parseOptions(append(base, "-loadgen-tick", "50ms"), &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, 50*time.Millisecond, o.LoadgenTick)
	_, err = parseOptions(append(base, "-loadgen-tick", "0s"), &strings.Builder{})
	require.ErrorContains(t, err, "-loadgen-tick")

	rf, err := newRunFiles(t.TempDir())
	require.NoError(t, err)
	spec := runSpec{Kind: kindFastpath, Rate: 20000, Warmup: 30 * time.Second, Window: 30 * time.Second, Drain: 3 * time.Second, Seed: 1}
	e := &env{shape: "sdk", loadgenTick: time.Millisecond}
	args := strings.Join(e.loadgenArgs(rf, spec), " ")
	assert.Contains(t, args, "--tick 1ms")
	assert.Contains(t, args, "--shape sdk")
	assert.Contains(t, args, "--rate 20000 --duration 1m2s --drain 3s")
	e.loadgenTick = 0
	assert.NotContains(t, strings.Join(e.loadgenArgs(rf, spec), " "), "--tick", "0: the loadgen's own default")
}
