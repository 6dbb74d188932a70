package main

import (
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseStatCPU reads minflt and utime+stime past a command name holding spaces
// and parentheses, and refuses a cut or garbled line.
func TestParseStatCPU(t *testing.T) {
	// Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 12345 1000000 500"
	got, err := parseStat([]byte(line))
	require.NoError(t, err)
	assert.InDelta(t, 325/clockTicks, got.cpu, 1e-12)
	assert.InDelta(t, 100, got.minflt, 0)

	_, err = parseStat([]byte("4242 (x) S 1 2 3"))
	require.Error(t, err)
	_, err = parseStat([]byte("4242 x S"))
	require.Error(t, err)
	_, err = parseStat([]byte("4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 u s 0"))
	require.Error(t, err)
	_, err = parseStat([]byte("4242 (x) S 1 4242 4242 0 -1 4194560 m 0 0 0 250 75 0"))
	require.Error(t, err)
}

// TestProcessClock reads another process's CPU time from its CPU clock:
// nanoseconds, between the two /proc/PID/stat readings around it (which
// are the same total cut to clock ticks), and growing while it runs. A
// process that does not exist is an error, not 0.
func TestProcessClock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process CPU clock is read on Linux only")
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid

	deadline := time.Now().Add(10 * time.Second)
	var first time.Duration
	for first < 50*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		d, err := processClock(pid)
		require.NoError(t, err)
		first = d
	}
	require.GreaterOrEqual(t, first, 50*time.Millisecond, "the spinning child got no CPU in 10 s")

	before, err := procStatCPU(pid)
	require.NoError(t, err)
	clk, err := processClock(pid)
	require.NoError(t, err)
	after, err := procStatCPU(pid)
	require.NoError(t, err)
	tick := 1 / clockTicks
	assert.GreaterOrEqual(t, clk.Seconds(), before-tick, "clock %v, stat before %.3f s", clk, before)
	assert.LessOrEqual(t, clk.Seconds(), after+2*tick, "clock %v, stat after %.3f s", clk, after)
	assert.GreaterOrEqual(t, clk, first)

	// It grows while the child runs (on a loaded machine, not at once).
	var sec float64
	var method string
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		sec, method, err = procCPU(pid)
		require.NoError(t, err)
		if sec > clk.Seconds() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, cpuClock, method)
	assert.Greater(t, sec, clk.Seconds())

	// A reaped process has no clock.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	_, err = processClock(dead.Process.Pid)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

// TestProcessClockSubTick: the clock resolves less than a clock tick, which
// /proc/PID/stat cannot.
func TestProcessClockSubTick(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process CPU clock is read on Linux only")
	}
	var fracs int
	for range 5 {
		d, err := processClock(os.Getpid())
		require.NoError(t, err)
		if d%(10*time.Millisecond) != 0 {
			fracs++
		}
		spin(time.Millisecond)
	}
	assert.Positive(t, fracs, "every reading a whole number of 10 ms ticks")
}

func spin(d time.Duration) {
	for t := time.Now(); time.Since(t) < d; {
	}
}

// TestParseGCTrace sums the gctrace lines and skips the rest: other log
// lines and a line cut by the window's ends.
func TestParseGCTrace(t *testing.T) {
	text := strings.Join([]string{
		"0.5 ms cpu, 10->11->5 MB, 12 MB goal, 0 MB stacks, 0 MB globals, 1 P", // cut at the start
		"2026-12-05T01:00:00.000Z\twarn\tsomething",
		"gc 7 @3.120s 2%: 0.010+2.0+0.020 ms clock, 0.010+0.50/1.5/0.25+0.020 ms cpu, 40->41->20 MB, 42 MB goal, 0 MB stacks, 0 MB globals, 1 P",
		"gc 8 @5.800s 2%: 0.012+3.1+0.030 ms clock, 0.012+1.0/2.0/0+0.030 ms cpu, 40->42->21 MB, 40 MB goal, 0 MB stacks, 0 MB globals, 1 P (forced)",
		"gc 9 @7.100s 2%: 0.011+2.5+0.02", // cut at the end
	}, "\n")
	st := parseGCTrace([]byte(text))
	assert.Equal(t, 2, st.Cycles)
	assert.InDelta(t, 0.010+0.50+1.5+0.25+0.020+0.012+1.0+2.0+0+0.030, st.CPUMs, 1e-9)
	assert.InDelta(t, 1.5, st.AssistM, 1e-9)
	assert.InDelta(t, 0.25, st.IdleMs, 1e-9)
	assert.InDelta(t, 41, st.GoalMB, 1e-9)

	assert.Equal(t, gcStats{}, parseGCTrace(nil))
}

// TestGCBetween reads only the part of the log between two sizes.
func TestGCBetween(t *testing.T) {
	path := t.TempDir() + "/collector.log"
	line := "gc 1 @1.0s 1%: 0.01+1+0.01 ms clock, 0.01+0.1/0.2/0.3+0.01 ms cpu, 4->4->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 1 P\n"
	f, err := os.Create(path)
	require.NoError(t, err)
	_, _ = io.WriteString(f, line)
	from := logSize(path)
	_, _ = io.WriteString(f, line+line)
	to := logSize(path)
	_, _ = io.WriteString(f, line)
	require.NoError(t, f.Close())
	assert.Equal(t, 2, gcBetween(path, from, to).Cycles)
	assert.Equal(t, 0, gcBetween(path, to, from).Cycles)
	assert.Equal(t, 0, gcBetween(path+".missing", 0, to).Cycles)
}

// TestHalves cuts the window at the scrape nearest its middle.
func TestHalves(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	pt := func(s, cpu, acc float64) cpuPoint {
		return cpuPoint{t: t0.Add(time.Duration(s * float64(time.Second))), cpu: cpu, accepted: acc}
	}
	// 10 000 spans/s; 0.02 s of CPU per 2 s in the first half (1 µs/span),
	// 0.06 s in the second (3 µs/span).
	h := halves([]cpuPoint{pt(0, 1, 0), pt(2, 1.02, 20000), pt(4.1, 1.04, 40000), pt(6, 1.10, 60000), pt(8, 1.16, 80000)})
	require.NotNil(t, h)
	assert.InDelta(t, 1.0, h.FirstMicrosPerSpan, 1e-9)
	assert.InDelta(t, 3.0, h.SecondMicrosPerSpan, 1e-9)
	assert.InDelta(t, 3.0, h.Ratio(), 1e-9)
	assert.InDeltaSlice(t, []float64{1, 1, 3, 3}, h.Segments, 1e-9)

	assert.Nil(t, halves([]cpuPoint{pt(0, 1, 0), pt(8, 2, 10)}))
	assert.True(t, math.IsNaN((*windowHalves)(nil).Ratio()))
	assert.True(t, math.IsNaN((&windowHalves{FirstMicrosPerSpan: 1}).Ratio()))
}

// TestShapeDefaults: -shape sdk raises the rate (quick mode), the warm-up
// and the window unless their flags are given; the bench shape keeps the
// mode's presets.
func TestShapeDefaults(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		rate           float64
		warmup, window time.Duration
	}{
		{"bench quick", []string{"-mode", "quick"}, 5000, 4 * time.Second, 10 * time.Second},
		{"sdk quick", []string{"-mode", "quick", "-shape", "sdk"}, sdkRate, sdkWarmup, sdkWindow},
		{"sdk quick, given", []string{"-mode", "quick", "-shape", "sdk", "-rate", "10000", "-warmup", "5s", "-window", "20s"}, 10000, 5 * time.Second, 20 * time.Second},
		{"sdk full", []string{"-mode", "full", "-shape", "sdk"}, 0, sdkWarmup, sdkWindow},
		{"sdk full, longer window given", []string{"-shape", "sdk", "-window", "60s"}, 0, sdkWarmup, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, io.Discard)
			require.NoError(t, err)
			assert.InDelta(t, tc.rate, o.Rate, 0)
			assert.Equal(t, tc.warmup, o.Warmup)
			assert.Equal(t, tc.window, o.Window)
		})
	}
	assert.Greater(t, sdkWarmup, sdkFill(sdkWait), "the SDK warm-up must cover the fill time")
}

// TestFastPercent: -fast-percent sets every collector's probabilistic
// policy (5 % unless given) and must be a percentage above 0.
func TestFastPercent(t *testing.T) {
	o, err := parseOptions([]string{"-mode", "quick"}, io.Discard)
	require.NoError(t, err)
	assert.InDelta(t, fastPercentage, o.FastPercent, 0)
	o, err = parseOptions([]string{"-mode", "quick", "-fast-percent", "0.01"}, io.Discard)
	require.NoError(t, err)
	assert.InDelta(t, 0.01, o.FastPercent, 0)
	for _, bad := range []string{"0", "-1", "101"} {
		_, err := parseOptions([]string{"-mode", "quick", "-fast-percent", bad}, io.Discard)
		assert.ErrorContains(t, err, "-fast-percent", bad)
	}
}
