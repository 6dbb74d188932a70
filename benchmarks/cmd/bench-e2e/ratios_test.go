package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPairRatios computes each round's ratios from that round's runs only,
// and leaves a ratio out (NaN) when a run of the round is missing.
func TestPairRatios(t *testing.T) {
	run := func(label string, k kind, cpu float64) *runResult {
		return &runResult{Label: label, Kind: k, CPUMicrosPerSpan: cpu}
	}
	rows := pairRatios([]*runResult{
		run("pair1", kindTailsift, 6), run("pair1", kindFastpath, 3), run("pair1", kindContrib, 10), run("pair1", kindBaseline, 2),
		run("pair2", kindContrib, 12), run("pair2", kindFastpath, 4), run("pair2", kindBaseline, 4),
	})
	require.Len(t, rows, 2)
	assert.Equal(t, "pair1", rows[0].label)
	assert.InDelta(t, 0.5, rows[0].spread, 1e-9) // (6-2)/(10-2)
	assert.InDelta(t, 0.6, rows[0].tsContrib, 1e-9)
	assert.InDelta(t, 1.5, rows[0].fpBase, 1e-9)
	assert.InDelta(t, 0.3, rows[0].fpContrib, 1e-9)
	assert.True(t, math.IsNaN(rows[1].spread), "no processor run in pair2")
	assert.True(t, math.IsNaN(rows[1].tsContrib))
	assert.InDelta(t, 1.0, rows[1].fpBase, 1e-9)
	assert.InDelta(t, 1.0/3, rows[1].fpContrib, 1e-9)
	assert.Equal(t, "—", ratioCell(rows[1].spread))
	assert.Equal(t, "0.50", ratioCell(rows[0].spread))
}
