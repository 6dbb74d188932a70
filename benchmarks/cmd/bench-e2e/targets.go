package main

import (
	"fmt"
)

type target struct {
	Name, Detail string
	OK           bool
}
type targetList []target

func (t targetList) missed() []target {
	var out []target
	for _, x := range t {
		if !x.OK {
			out = append(out, x)
		}
	}
	return out
}

// targets checks tailsift's (the processor's) four targets on the
// side-by-side runs: CPU/span ≤ 1/2 of contrib's, bytes per buffered span
// ≤ 1/3 of contrib's (both ratios of medians), p99 added decision latency
// ≤ 100 ms and 100 % of error and slow traces complete (both in every run).
// With side-by-side runs all four are listed; one without the
// measurements to judge it is NOT DETERMINED and counts as missed. Without
// side-by-side runs (saturation only) there is nothing to judge: nil.
func (rep *report) targets() targetList {
	if len(rep.Side) == 0 {
		return nil
	}
	var out targetList
	undetermined := func(name, why string) {
		out = append(out, target{name + " (NOT DETERMINED)", why, false})
	}
	cpu := func(r *runResult) (float64, bool) { return positive(r.CPUMicrosPerSpan) }
	const cpuName = "CPU/span ≤ 1/2 of contrib's"
	if ts, ct := rep.med(kindTailsift, cpu), rep.med(kindContrib, cpu); ts.n > 0 && ct.n > 0 {
		q := ts.med / ct.med
		out = append(out, target{cpuName, fmt.Sprintf("median %.2f vs %.2f µs/span: ratio %.2f", ts.med, ct.med, q), q <= 0.5})
	} else {
		undetermined(cpuName, fmt.Sprintf("CPU µs/span measured in %d tailsift and %d contrib runs", ts.n, ct.n))
	}
	// By RSS only, as the side-by-side table's bold row: tailsift holds its
	// span records outside the Go heap, so heap figures do not compare.
	by := func(r *runResult) (float64, bool) { return positive(r.BytesPerBufSpanRSS) }
	const byName = "bytes per buffered span ≤ 1/3 of contrib's"
	if tb, cb := rep.med(kindTailsift, by), rep.med(kindContrib, by); tb.n > 0 && cb.n > 0 {
		q := tb.med / cb.med
		out = append(out, target{byName, fmt.Sprintf("(RSS − idle RSS) ÷ buffered spans, median %.0f vs %.0f B: ratio %.2f", tb.med, cb.med, q), q <= 1.0/3})
	} else {
		undetermined(byName, fmt.Sprintf("B / buffered span (RSS − idle RSS) measured in %d tailsift and %d contrib runs", tb.n, cb.n))
	}
	const p99Name = "p99 added decision latency ≤ 100 ms"
	if p99 := rep.med(kindTailsift, func(r *runResult) (float64, bool) { return knownScaled(r.P99AddedMs, 1) }); p99.n > 0 {
		out = append(out, target{p99Name, fmt.Sprintf("worst run %.0f ms (median %.0f)", p99.max, p99.med), p99.max <= 100})
	} else {
		undetermined(p99Name, "no tailsift run measured a latency")
	}
	const compName = "100 % of error and slow traces complete in every run"
	er := rep.med(kindTailsift, func(r *runResult) (float64, bool) { return knownScaled(r.ErrorCompletePct, 1) })
	sl := rep.med(kindTailsift, func(r *runResult) (float64, bool) { return knownScaled(r.SlowCompletePct, 1) })
	if er.n > 0 && sl.n > 0 {
		out = append(out, target{compName, fmt.Sprintf("worst run: error %.3f %%, slow %.3f %% (of %d and %d runs)", er.min, sl.min, er.n, sl.n), er.min >= 100 && sl.min >= 100})
	} else {
		undetermined(compName, fmt.Sprintf("error completeness measured in %d tailsift runs, slow in %d", er.n, sl.n))
	}
	return out
}

// fastTargets checks the fast path's targets: CPU/span ≤ 1/4 of contrib's
// and below the baseline's, bytes per buffered span ≤ 1/3 of contrib's
// (RSS − idle RSS), saturation per core ≥ 3× contrib's (contrib's from this
// run's ladder, else -contrib-sat-ref).
func (rep *report) fastTargets() targetList {
	var out targetList
	cpu := func(r *runResult) (float64, bool) { return positive(r.CPUMicrosPerSpan) }
	fa, ct, bl := rep.med(kindFastpath, cpu), rep.med(kindContrib, cpu), rep.med(kindBaseline, cpu)
	if fa.n == 0 {
		return nil
	}
	if ct.n > 0 {
		q := fa.med / ct.med
		out = append(out, target{"CPU/span ≤ 1/4 of contrib's", fmt.Sprintf("median %.2f vs %.2f µs/span: ratio %.2f (worst fastpath run %.2f: %.2f)", fa.med, ct.med, q, fa.max, fa.max/ct.med), q <= 0.25})
	}
	if bl.n > 0 {
		out = append(out, target{"CPU/span below the baseline's (otlp → nop)", fmt.Sprintf("median %.2f vs %.2f µs/span: ratio %.2f (fastpath runs %.2f–%.2f, baseline runs %.2f–%.2f)", fa.med, bl.med, fa.med/bl.med, fa.min, fa.max, bl.min, bl.max), fa.med < bl.med})
	}
	by := func(r *runResult) (float64, bool) { return positive(r.BytesPerBufSpanRSS) }
	fb, cb := rep.med(kindFastpath, by), rep.med(kindContrib, by)
	if fb.n > 0 && cb.n > 0 {
		// By RSS only: tailsift holds its span records outside the Go heap,
		// so heap figures do not compare.
		q := fb.med / cb.med
		out = append(out, target{"bytes per buffered span ≤ 1/3 of contrib's", fmt.Sprintf("(RSS − idle RSS) ÷ buffered spans, median %.0f vs %.0f B: ratio %.2f", fb.med, cb.med, q), q <= 1.0/3})
	}
	cs, src := rep.SatRate[kindContrib].Rate, "this run"
	if cs == 0 && rep.Opts.ContribSatRef > 0 {
		cs, src = rep.Opts.ContribSatRef, "-contrib-sat-ref, an earlier run"
	}
	fs := rep.SatRate[kindFastpath]
	if cs > 0 && fs.StepsTried > 0 {
		need := 3 * cs
		switch {
		case fs.Rate >= need:
			lower := ""
			if fs.FirstFail == 0 {
				lower = " (a lower bound: the ladder ended without a failure)"
			}
			out = append(out, target{"saturation per core ≥ 3× contrib's", fmt.Sprintf("fastpath ≥ %.0f spans/s%s vs contrib %.0f (%s): ×%.2f, needed %.0f", fs.Rate, lower, cs, src, fs.Rate/cs, need), true})
		case fs.FirstFail > 0 && fs.FirstFail <= need:
			out = append(out, target{"saturation per core ≥ 3× contrib's", fmt.Sprintf("fastpath failed at %.0f spans/s (%s) vs needed 3 × %.0f (%s) = %.0f", fs.FirstFail, fs.FailReason, cs, src, need), false})
		default:
			out = append(out, target{"saturation per core ≥ 3× contrib's (NOT DETERMINED)", fmt.Sprintf("fastpath passed %.0f, first failure %.0f (%s); needed %.0f = 3 × %.0f (%s): the ladder started too high to tell", fs.Rate, fs.FirstFail, fs.FailReason, need, cs, src), false})
		}
	}
	return out
}
