package main

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWriteSpread renders the spread of each collector's µs/span (clock and
// ticks), the halves and GC figures, and the spread of the per-round
// ratios; a report without the accounting (written before it) gets none.
func TestWriteSpread(t *testing.T) {
	run := func(label string, k kind, us, ticks float64, cycles int) *runResult {
		return &runResult{Label: label, Kind: k, CPUMicrosPerSpan: us, CPUMicrosPerSpanTicks: ticks, CPUAccounting: cpuClock,
			CPUSeconds: us * 0.2, CPUUtil: us / 100, Halves: &windowHalves{FirstMicrosPerSpan: us, SecondMicrosPerSpan: us * 1.1},
			GC: &gcStats{Cycles: cycles, CPUMs: us * 20}, MinorFaultsPerKSpan: us}
	}
	rep := &report{Side: []*runResult{
		run("pair1", kindTailsift, 4, 4.5, 3), run("pair1", kindContrib, 10, 9, 5), run("pair1", kindBaseline, 2, 2, 40),
		run("pair2", kindContrib, 12, 14, 6), run("pair2", kindTailsift, 5, 5, 3), run("pair2", kindBaseline, 2, 2.5, 41),
	}}
	var md markdownWriter
	rep.writeSpread(&md)
	out := md.String()
	containsAll(t, out, "spread section",
		// tailsift: 4 and 5 -> median 4.5, spread 1/4.5; ticks 4.5 and 5 -> 0.5/4.75.
		"| tailsift | 2 | 4.50 [4.00–5.00] | 22.2 % | 4.75 [4.50–5.00] | 10.5 % | 0.045 [0.040–0.050] | 1.10 [1.10–1.10] | 3 [3–3] | 10 [10–10] | 4.5 [4.0–5.0] |",
		"| contrib | 2 | 11.00 [10.00–12.00] | 18.2 % |",
		"| baseline | 2 | 2.00 [2.00–2.00] | 0.0 % | 2.25 [2.00–2.50] | 22.2 % |",
		// processor spread (4-2)/(10-2) = 0.25 and (5-2)/(12-2) = 0.30.
		"| processor spread (added CPU, tailsift ÷ contrib) | 0.28 [0.25–0.30] | 18.2 % |",
	)
	// No fastpath runs: neither its row nor its ratios.
	assert.NotContains(t, out, "| fastpath |")
	assert.NotContains(t, out, "| fastpath / baseline |")

	for _, r := range rep.Side {
		r.CPUAccounting = ""
	}
	md.Reset()
	rep.writeSpread(&md)
	assert.Empty(t, md.String())
}

func TestSpreadOf(t *testing.T) {
	s := spreadOf([]float64{3, math.NaN(), 1, 2, math.Inf(1)})
	assert.Equal(t, spreadStat{n: 3, med: 2, min: 1, max: 3}, s)
	assert.InDelta(t, 100, s.Pct(), 1e-9)
	assert.True(t, math.IsNaN(spreadOf([]float64{5}).Pct()))
	assert.Equal(t, "—", spreadOf(nil).cell("%.2f"))
	assert.True(t, strings.HasPrefix(spreadOf([]float64{1, 2}).cell("%.1f"), "1.5 [1.0–2.0]"))
}
