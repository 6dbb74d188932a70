package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun: one line per sample, each with a positive CPU time no larger
// than its wall time (plus a clock's rounding), and the summary's quantiles
// in order.
func TestRun(t *testing.T) {
	for _, mem := range []int{0, 1} {
		var out, sum bytes.Buffer
		require.NoError(t, run(&out, &sum, 5, time.Millisecond, mem, 200_000))
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 5)
		for _, l := range lines {
			f := strings.Fields(l)
			require.Len(t, f, 3, l)
			cpu, err := strconv.ParseFloat(f[1], 64)
			require.NoError(t, err)
			wall, err := strconv.ParseFloat(f[2], 64)
			require.NoError(t, err)
			assert.Positive(t, cpu, l)
			assert.LessOrEqual(t, cpu, wall+0.05, l)
		}
		var mn, p10, med, p90, mx float64
		_, err := fmtSscanf(sum.String(), &mn, &p10, &med, &p90, &mx)
		require.NoError(t, err, sum.String())
		assert.True(t, mn <= p10 && p10 <= med && med <= p90 && p90 <= mx, sum.String())
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	var out, sum bytes.Buffer
	assert.Error(t, run(&out, &sum, 0, time.Millisecond, 0, 1))
	assert.Error(t, run(&out, &sum, 1, time.Millisecond, -1, 1))
	assert.Error(t, run(&out, &sum, 1, time.Millisecond, 0, 0))
}

// TestWorkTableIsAPowerOfTwo: the mask covers the whole table.
func TestWorkTableIsAPowerOfTwo(t *testing.T) {
	for _, mib := range []int{0, 1, 3, 8} {
		w := newWork(mib)
		n := len(w.table)
		assert.Equal(t, 0, n&(n-1), "%d MiB: %d words", mib, n)
		assert.Equal(t, uint64(n-1), w.mask)
		if mib > 0 {
			assert.LessOrEqual(t, n*8, mib<<20)
			assert.Greater(t, n*16, mib<<20)
		}
	}
}

func fmtSscanf(s string, v ...any) (int, error) {
	return fmt.Sscanf(s, "hostspeed: 5 samples, CPU ms per sample: min %f p10 %f median %f p90 %f max %f", v...)
}
