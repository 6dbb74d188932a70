package main

import (
	"fmt"
	"math"
)

// writePairRatios writes the CPU ratios of each round (pair), from runs of
// the same round only: the spread over rounds is what a loaded machine
// leaves comparable.
func (rep *report) writePairRatios(md *markdownWriter) {
	rows := pairRatios(rep.Side)
	if len(rows) == 0 {
		return
	}
	md.printf("CPU µs/span ratios per round (runs of the same round; processor spread = (tailsift − baseline) ÷ (contrib − baseline)):\n\n")
	md.printf("| round | processor spread | tailsift / contrib | fastpath / baseline | fastpath / contrib |\n|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		md.printf("| %s | %s | %s | %s | %s |\n", r.label, ratioCell(r.spread), ratioCell(r.tsContrib), ratioCell(r.fpBase), ratioCell(r.fpContrib))
	}
	md.printf("\n")
	rep.writeSpread(md)
}

// pairRatio is one round's CPU ratios; NaN where a run is missing.
type pairRatio struct {
	label                                string
	spread, tsContrib, fpBase, fpContrib float64
}

// pairRatios groups the side-by-side runs by round label, in order.
func pairRatios(side []*runResult) []pairRatio {
	var out []pairRatio
	byLabel := map[string]map[kind]float64{}
	for _, r := range side {
		m := byLabel[r.Label]
		if m == nil {
			m = map[kind]float64{}
			byLabel[r.Label] = m
			out = append(out, pairRatio{label: r.Label})
		}
		if r.CPUMicrosPerSpan > 0 {
			m[r.Kind] = r.CPUMicrosPerSpan
		}
	}
	div := func(a, b float64) float64 {
		if a > 0 && b > 0 {
			return a / b
		}
		return math.NaN()
	}
	for i := range out {
		m := byLabel[out[i].label]
		ts, ct, fp, bl := m[kindTailsift], m[kindContrib], m[kindFastpath], m[kindBaseline]
		out[i].spread = math.NaN()
		if ts > 0 && ct > 0 && bl > 0 && ct > bl {
			out[i].spread = (ts - bl) / (ct - bl)
		}
		out[i].tsContrib, out[i].fpBase, out[i].fpContrib = div(ts, ct), div(fp, bl), div(fp, ct)
	}
	return out
}

func ratioCell(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}
