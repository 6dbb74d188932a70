package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
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

// TestScrapeEvery: the window's scrapes come every -scrape-every (2s by
// default; 0 is refused, naming the flag), and the option reaches the
// sampling loop.
func TestScrapeEvery(t *testing.T) {
	base := []string{"-mode", "quick", "-sat=false", "-rate", "1000"}
	o, err := parseOptions(base, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, o.ScrapeEvery)
	o, err = parseOptions(append(base, "-scrape-every", "15s"), &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, 15*time.Second, o.ScrapeEvery)
	_, err = parseOptions(append(base, "-scrape-every", "0s"), &strings.Builder{})
	require.ErrorContains(t, err, "-scrape-every")

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("# EOF\n"))
	}))
	defer srv.Close()
	rf := &runFiles{metricsURL: srv.URL}
	for _, c := range []struct {
		every    time.Duration
		min, max int32
	}{
		// Samples come every 0.5 s and none in the window's last second:
		// over 2.6 s, at 0.5, 1.0 and 1.5 s.
		{every: 300 * time.Millisecond, min: 2, max: 4},
		{every: time.Hour, min: 0, max: 0},
	} {
		hits.Store(0)
		var ws windowSamples
		require.NoError(t, ws.sampleUntil(t.Context(), time.Now().Add(2600*time.Millisecond), rf, os.Getpid(), kindBaseline, &runResult{}, c.every))
		assert.GreaterOrEqual(t, hits.Load(), c.min, "every %v", c.every)
		assert.LessOrEqual(t, hits.Load(), c.max, "every %v", c.every)
	}
}
