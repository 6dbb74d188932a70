package main

import (
	"fmt"
	"math"
	"slices"
)

// spreadStat is the spread of one figure over runs or rounds.
type spreadStat struct {
	n             int
	med, min, max float64
}

// Pct is (max − min) ÷ median in percent; NaN with fewer than two values.
func (s spreadStat) Pct() float64 {
	if s.n < 2 || s.med == 0 {
		return math.NaN()
	}
	return 100 * (s.max - s.min) / math.Abs(s.med)
}

func spreadOf(v []float64) spreadStat {
	v = slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) })
	if len(v) == 0 {
		return spreadStat{}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spreadStat{n: len(v), med: m, min: v[0], max: v[len(v)-1]}
}

func (s spreadStat) cell(format string) string {
	switch s.n {
	case 0:
		return "—"
	case 1:
		return fmt.Sprintf(format, s.med)
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", s.med, s.min, s.max)
}

func pctCell(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.1f %%", v)
}

// kindRuns returns a figure of every side-by-side run of kind k (NaN where
// the run lacks it).
func kindRuns(side []*runResult, k kind, get func(*runResult) float64) []float64 {
	var out []float64
	for _, r := range side {
		if r.Kind == k {
			out = append(out, get(r))
		}
	}
	return out
}

// writeSpread writes how much the CPU figures moved between runs of the
// same binary and between rounds: the spread of each collector's µs/span
// (with the process CPU clock, and with /proc/PID/stat's clock ticks over
// the same windows), how its window's second half compares with its first,
// its GC cycles, and the spread of the per-round ratios.
//
// Reports written before the runner recorded its CPU accounting have none
// of these figures but the first; they are rendered as they were.
func (rep *report) writeSpread(md *markdownWriter) {
	if !slices.ContainsFunc(rep.Side, func(r *runResult) bool { return r.CPUAccounting != "" }) {
		return
	}
	var kinds []kind
	for _, k := range []kind{kindTailsift, kindFastpath, kindContrib, kindBaseline} {
		if slices.ContainsFunc(rep.Side, func(r *runResult) bool { return r.Kind == k }) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return
	}
	md.printf("Repeatability of the CPU figures (median [min–max] over the runs of each collector; spread = (max − min) ÷ median; the 2nd ÷ 1st half of each window should be 1 in a steady state; GC from gctrace, in the window: its `ms cpu` is the GC workers' wall time, which overstates their CPU when CPU 0 is shared; minor page faults from /proc/PID/stat):\n\n")
	md.printf("| collector | runs | CPU µs/span | spread | the same from clock ticks | spread | cores | window 2nd ÷ 1st half | GC cycles | GC time %% of the collector's CPU | minor faults / 1000 spans |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range kinds {
		cpu := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 { return nanIfZero(r.CPUMicrosPerSpan) }))
		ticks := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 { return nanIfZero(r.CPUMicrosPerSpanTicks) }))
		cores := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 { return r.CPUUtil }))
		half := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 { return r.Halves.Ratio() }))
		gcN := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 {
			if r.GC == nil {
				return math.NaN()
			}
			return float64(r.GC.Cycles)
		}))
		gcShare := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 {
			if r.GC == nil || r.CPUSeconds <= 0 {
				return math.NaN()
			}
			return 100 * r.GC.CPUMs / 1e3 / r.CPUSeconds
		}))
		faults := spreadOf(kindRuns(rep.Side, k, func(r *runResult) float64 { return nanIfZero(r.MinorFaultsPerKSpan) }))
		md.printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k, cpu.n, cpu.cell("%.2f"), pctCell(cpu.Pct()),
			ticks.cell("%.2f"), pctCell(ticks.Pct()), cores.cell("%.3f"), half.cell("%.2f"), gcN.cell("%.0f"), gcShare.cell("%.0f"), faults.cell("%.1f"))
	}
	rows := pairRatios(rep.Side)
	if len(rows) < 2 {
		md.printf("\n")
		return
	}
	md.printf("\nSpread of the per-round ratios over %d rounds:\n\n| ratio | median [min–max] | spread |\n|---|---:|---:|\n", len(rows))
	for _, x := range []struct {
		name string
		get  func(pairRatio) float64
	}{
		{"processor spread (added CPU, tailsift ÷ contrib)", func(p pairRatio) float64 { return p.spread }},
		{"tailsift / contrib", func(p pairRatio) float64 { return p.tsContrib }},
		{"fastpath / baseline", func(p pairRatio) float64 { return p.fpBase }},
		{"fastpath / contrib", func(p pairRatio) float64 { return p.fpContrib }},
	} {
		var v []float64
		for _, r := range rows {
			v = append(v, x.get(r))
		}
		if s := spreadOf(v); s.n > 0 {
			md.printf("| %s | %s | %s |\n", x.name, s.cell("%.2f"), pctCell(s.Pct()))
		}
	}
	md.printf("\n")
}

func nanIfZero(v float64) float64 {
	if v <= 0 {
		return math.NaN()
	}
	return v
}
