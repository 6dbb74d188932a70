package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// row is one metric of the side-by-side table.
type row struct {
	name  string
	fmt   string // value format
	get   func(*runResult) (float64, bool)
	ratio bool // print tailsift/contrib and vs-baseline ratios
	kinds []kind
}

func f(v float64) (float64, bool) { return v, true }
func fp(p *float64, scale float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p * scale, true
}
func pos(v float64) (float64, bool) { return v, v > 0 }

// sideKinds: every kind of the side-by-side table;
// samplers: the kinds that sample; pair: the two the sizing compares.
var sideKinds = []kind{kindTailsift, kindContrib, kindBaseline, kindFastpath}
var samplers = []kind{kindTailsift, kindContrib, kindFastpath}
var pair = []kind{kindTailsift, kindContrib}

var sideRows = []row{
	{"accepted spans/s in the window", "%.0f", func(r *runResult) (float64, bool) { return f(r.WindowAcceptedRate) }, false, sideKinds},
	{"**collector CPU µs / accepted span**", "%.2f", func(r *runResult) (float64, bool) { return pos(r.CPUMicrosPerSpan) }, true, sideKinds},
	{"collector CPU (cores)", "%.3f", func(r *runResult) (float64, bool) { return f(r.CPUUtil) }, true, sideKinds},
	{"collector CPU at idle, before load (cores)", "%.4f", func(r *runResult) (float64, bool) { return f(r.IdleCPU) }, false, sideKinds},
	{"RSS idle, before load (MB)", "%.1f", func(r *runResult) (float64, bool) { return pos(r.RSSIdleMB) }, true, sideKinds},
	{"**RSS mean in the window (MB)**", "%.1f", func(r *runResult) (float64, bool) { return pos(r.RSSMeanMB) }, true, sideKinds},
	{"RSS peak in the window (MB)", "%.1f", func(r *runResult) (float64, bool) { return pos(r.RSSPeakMB) }, true, sideKinds},
	{"Go heap mean in the window (MB)", "%.1f", func(r *runResult) (float64, bool) { return pos(r.HeapMeanMB) }, true, sideKinds},
	{"buffered spans (mean)", "%.0f", func(r *runResult) (float64, bool) { return pos(r.BufferedSpansMean) }, true, samplers},
	{"buffered traces (mean)", "%.0f", func(r *runResult) (float64, bool) { return pos(r.BufferedTracesMean) }, true, samplers},
	{"mean hold per span, s (buffered ÷ rate)", "%.2f", func(r *runResult) (float64, bool) { return pos(r.MeanHoldS) }, true, samplers},
	{"**B / buffered span (RSS − idle RSS)**", "%.0f", func(r *runResult) (float64, bool) { return pos(r.BytesPerBufSpanRSS) }, true, samplers},
	{"B / buffered span (RSS − baseline's mean RSS)", "%.0f", nil, true, samplers},
	{"B / buffered span (heap − idle heap; tailsift keeps span records off the heap)", "%.0f", func(r *runResult) (float64, bool) { return pos(r.BytesPerBufSpanHeap) }, true, samplers},
	{"B / buffered span (tailsift's / fastpath's buffered_bytes)", "%.0f", func(r *runResult) (float64, bool) { return pos(r.BytesPerBufSpanAcct) }, false, []kind{kindTailsift, kindFastpath}},
	{"p50 added decision latency (ms)", "%.0f", func(r *runResult) (float64, bool) { return fp(r.P50AddedMs, 1) }, true, samplers},
	{"**p99 added decision latency (ms)**", "%.0f", func(r *runResult) (float64, bool) { return fp(r.P99AddedMs, 1) }, true, samplers},
	{"**error traces complete (%)**", "%.2f", func(r *runResult) (float64, bool) { return fp(r.ErrorCompletePct, 1) }, false, samplers},
	{"**slow traces complete (%)**", "%.2f", func(r *runResult) (float64, bool) { return fp(r.SlowCompletePct, 1) }, false, samplers},
	{"fast kept fraction (configured 0.05)", "%.4f", func(r *runResult) (float64, bool) { return fp(r.FastKeptFraction, 1) }, false, samplers},
	{"fast kept z-score (binomial)", "%+.2f", func(r *runResult) (float64, bool) { return fp(r.FastZ, 1) }, false, samplers},
	{"adjusted trace count, rel. error (%)", "%+.2f", func(r *runResult) (float64, bool) { return fp(r.AdjTracesRelErr, 100) }, false, samplers},
	{"adjusted span count, rel. error (%)", "%+.2f", func(r *runResult) (float64, bool) { return fp(r.AdjSpansRelErr, 100) }, false, samplers},
	{"kept spans without th", "%.0f", func(r *runResult) (float64, bool) {
		if r.Score == nil {
			return 0, false
		}
		return float64(r.Score.MissingTh.Spans), true
	}, false, samplers},
	{"spans refused (loadgen)", "%.0f", func(r *runResult) (float64, bool) {
		if r.Loadgen == nil {
			return 0, false
		}
		return float64(r.Loadgen.RefusedSpans), true
	}, false, sideKinds},
	{"other load on CPU 0 (cores)", "%.2f", func(r *runResult) (float64, bool) { return f(max(0, r.OtherCPU0)) }, false, sideKinds},
	{"CPU 1 busy: loadgen + sink + other (cores)", "%.2f", func(r *runResult) (float64, bool) { return f(r.CPU1Busy) }, false, sideKinds},
}

// sinkClasses are the workload classes the sink scored in the side-by-side
// runs, in the sink's order (fast, slow, error, anomaly, huge).
func (rep *report) sinkClasses() []string {
	var out []string
	for _, r := range rep.Side {
		if r.Score == nil {
			continue
		}
		for _, c := range r.Score.Classes {
			if !slices.Contains(out, c.Class) {
				out = append(out, c.Class)
			}
		}
	}
	return out
}

// classRows are the sink's per-class correctness figures, one row per
// class and figure, for the kinds with a sink (the samplers).
func classRows(classes []string) []row {
	var out []row
	field := func(class string, v func(*classRow) (float64, bool)) func(*runResult) (float64, bool) {
		return func(r *runResult) (float64, bool) {
			c := r.Score.class(class)
			if c == nil {
				return 0, false
			}
			return v(c)
		}
	}
	for _, cl := range classes {
		for _, x := range []struct {
			name, fmt string
			v         func(*classRow) (float64, bool)
		}{
			{"traces sent", "%.0f", func(c *classRow) (float64, bool) { return f(float64(c.TracesSent)) }},
			{"of them late", "%.0f", func(c *classRow) (float64, bool) { return f(float64(c.TracesLate)) }},
			{"kept", "%.0f", func(c *classRow) (float64, bool) { return f(float64(c.TracesKept)) }},
			{"complete", "%.0f", func(c *classRow) (float64, bool) { return f(float64(c.TracesComplete)) }},
			{"partial", "%.0f", func(c *classRow) (float64, bool) { return f(float64(c.TracesPartial)) }},
			{"duplicated", "%.0f", func(c *classRow) (float64, bool) { return f(float64(c.TracesDuplicated)) }},
			{"adjusted trace count, rel. error (%)", "%+.2f", func(c *classRow) (float64, bool) { return fp(c.Adjusted.TracesRelError, 100) }},
		} {
			out = append(out, row{cl + ": " + x.name, x.fmt, field(cl, x.v), false, samplers})
		}
	}
	return append(out, row{"anomaly recall (% of anomaly traces kept)", "%.2f", func(r *runResult) (float64, bool) {
		if r.Score == nil {
			return 0, false
		}
		return fp(r.Score.AnomalyRecall, 100)
	}, false, samplers})
}

type agg struct {
	n             int
	med, min, max float64
}

func aggregate(runs []*runResult, k kind, get func(*runResult) (float64, bool)) agg {
	var v []float64
	for _, r := range runs {
		if r.Kind != k {
			continue
		}
		if x, ok := get(r); ok && !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return agg{}
	}
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return agg{n: len(v), med: m, min: v[0], max: v[len(v)-1]}
}

func (a agg) cell(format string) string {
	if a.n == 0 {
		return "—"
	}
	if a.n == 1 {
		return fmt.Sprintf(format, a.med)
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", a.med, a.min, a.max)
}

func ratio(a, b agg) string {
	if a.n == 0 || b.n == 0 || b.med == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a.med/b.med)
}

func (rep *report) med(k kind, get func(*runResult) (float64, bool)) agg {
	return aggregate(rep.Side, k, get)
}

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
	cpu := func(r *runResult) (float64, bool) { return pos(r.CPUMicrosPerSpan) }
	const cpuName = "CPU/span ≤ 1/2 of contrib's"
	if ts, ct := rep.med(kindTailsift, cpu), rep.med(kindContrib, cpu); ts.n > 0 && ct.n > 0 {
		q := ts.med / ct.med
		out = append(out, target{cpuName, fmt.Sprintf("median %.2f vs %.2f µs/span: ratio %.2f", ts.med, ct.med, q), q <= 0.5})
	} else {
		undetermined(cpuName, fmt.Sprintf("CPU µs/span measured in %d tailsift and %d contrib runs", ts.n, ct.n))
	}
	// By RSS only, as the side-by-side table's bold row: tailsift holds its
	// span records outside the Go heap, so heap figures do not compare.
	by := func(r *runResult) (float64, bool) { return pos(r.BytesPerBufSpanRSS) }
	const byName = "bytes per buffered span ≤ 1/3 of contrib's"
	if tb, cb := rep.med(kindTailsift, by), rep.med(kindContrib, by); tb.n > 0 && cb.n > 0 {
		q := tb.med / cb.med
		out = append(out, target{byName, fmt.Sprintf("(RSS − idle RSS) ÷ buffered spans, median %.0f vs %.0f B: ratio %.2f", tb.med, cb.med, q), q <= 1.0/3})
	} else {
		undetermined(byName, fmt.Sprintf("B / buffered span (RSS − idle RSS) measured in %d tailsift and %d contrib runs", tb.n, cb.n))
	}
	const p99Name = "p99 added decision latency ≤ 100 ms"
	if p99 := rep.med(kindTailsift, func(r *runResult) (float64, bool) { return fp(r.P99AddedMs, 1) }); p99.n > 0 {
		out = append(out, target{p99Name, fmt.Sprintf("worst run %.0f ms (median %.0f)", p99.max, p99.med), p99.max <= 100})
	} else {
		undetermined(p99Name, "no tailsift run measured a latency")
	}
	const compName = "100 % of error and slow traces complete in every run"
	er := rep.med(kindTailsift, func(r *runResult) (float64, bool) { return fp(r.ErrorCompletePct, 1) })
	sl := rep.med(kindTailsift, func(r *runResult) (float64, bool) { return fp(r.SlowCompletePct, 1) })
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
	cpu := func(r *runResult) (float64, bool) { return pos(r.CPUMicrosPerSpan) }
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
	by := func(r *runResult) (float64, bool) { return pos(r.BytesPerBufSpanRSS) }
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

func (rep *report) markdown() string {
	var b strings.Builder
	o := rep.Opts
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# End-to-end: tailsift vs contrib tail_sampling v0.161.0 (%s)\n\n", rep.Started.UTC().Format("2006-01-02 15:04 MST"))
	m := rep.Machine
	w("Machine: %d CPUs (%s), %.1f GiB RAM, Linux %s, runner %s. Load average (1/5/15 min) at start %s, at end %s. ",
		m.NumCPU, m.Model, m.MemGiB, m.Kernel, m.GoVersion, rep.LoadAvg[0], rep.LoadAvg[1])
	if rep.Pinned {
		w("Collector pinned to CPU 0, loadgen and sink to CPU 1 (`taskset -c`).\n\n")
	} else {
		w("**Unpinned** (taskset missing).\n\n")
	}
	w("Mode `%s`, %s → %s (%s). tailsift sources sha256 %s.\n\n", o.Mode, rep.Started.UTC().Format("15:04:05"),
		rep.Finished.UTC().Format("15:04:05 MST"), rep.Finished.Sub(rep.Started).Round(time.Second), rep.SourceSum)
	w("Command: `%s`\n\n", strings.Join(rep.Commands, "`, `"))
	if o.Rescue > 0 {
		w("**tailsift runs with `rescue: {window: %s}`** (off by default): dropped traces are held so that a late ERROR span keeps them; its memory shows in tailsift's RSS.\n\n", o.Rescue)
	}

	if len(rep.Side) > 0 {
		var ran []string
		for _, k := range []kind{kindTailsift, kindFastpath, kindContrib, kindBaseline} {
			if slices.ContainsFunc(rep.Side, func(r *runResult) bool { return r.Kind == k }) {
				ran = append(ran, string(k))
			}
		}
		kinds := strings.Join(ran, ", ")
		hasFast := slices.Contains(ran, string(kindFastpath))
		w("## Side by side at %.0f spans/s offered (%d × %s; warm-up %v, window %v)\n\n", o.Rate, o.Pairs, kinds, o.Warmup, o.Window)
		w("Median [min–max] over the runs; ratios are of medians. Baseline = the same receiver into the `nop` exporter.")
		if hasFast {
			w(" fastpath = the `tailsift` receiver (raw OTLP bytes buffered, only kept traces decoded) straight into `otlp_grpc`, no processor; its baseline is still the `otlp` receiver into `nop`.")
		}
		w("\n\n")
		if hasFast {
			w("| metric | tailsift | fastpath | contrib | baseline | tailsift / contrib | tailsift / baseline | contrib / baseline | fastpath / contrib | fastpath / baseline |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		} else {
			w("| metric | tailsift | contrib | baseline | tailsift / contrib | tailsift / baseline | contrib / baseline |\n|---|---:|---:|---:|---:|---:|---:|\n")
		}
		baseRSS := rep.med(kindBaseline, func(r *runResult) (float64, bool) { return pos(r.RSSMeanMB) })
		for _, r := range sideRows {
			get := r.get
			if get == nil { // B / buffered span above the baseline pipeline's RSS
				if baseRSS.n == 0 {
					continue
				}
				get = func(x *runResult) (float64, bool) {
					if x.BufferedSpansMean <= 0 {
						return 0, false
					}
					return (x.RSSMeanMB - baseRSS.med) * mb / x.BufferedSpansMean, true
				}
			}
			a := map[kind]agg{}
			for _, k := range r.kinds {
				a[k] = rep.med(k, get)
			}
			rts, rtb, rcb, rfc, rfb := "", "", "", "", ""
			if r.ratio {
				rts, rtb, rcb = ratio(a[kindTailsift], a[kindContrib]), ratio(a[kindTailsift], a[kindBaseline]), ratio(a[kindContrib], a[kindBaseline])
				rfc, rfb = ratio(a[kindFastpath], a[kindContrib]), ratio(a[kindFastpath], a[kindBaseline])
				if !slices.Contains(r.kinds, kindBaseline) {
					rtb, rcb, rfb = "", "", ""
				}
			}
			if hasFast {
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, a[kindTailsift].cell(r.fmt), a[kindFastpath].cell(r.fmt), a[kindContrib].cell(r.fmt), a[kindBaseline].cell(r.fmt), rts, rtb, rcb, rfc, rfb)
			} else {
				w("| %s | %s | %s | %s | %s | %s | %s |\n", r.name, a[kindTailsift].cell(r.fmt), a[kindContrib].cell(r.fmt), a[kindBaseline].cell(r.fmt), rts, rtb, rcb)
			}
		}
		cpu := func(r *runResult) (float64, bool) { return pos(r.CPUMicrosPerSpan) }
		ts, ct, bl := rep.med(kindTailsift, cpu), rep.med(kindContrib, cpu), rep.med(kindBaseline, cpu)
		fa := rep.med(kindFastpath, cpu)
		switch {
		case hasFast && ts.n > 0 && ct.n > 0 && bl.n > 0 && fa.n > 0:
			w("| CPU µs/span above baseline (medians) | %.2f | %.2f | %.2f | 0 | %.2f | | | %.2f | |\n", ts.med-bl.med, fa.med-bl.med, ct.med-bl.med, (ts.med-bl.med)/(ct.med-bl.med), (fa.med-bl.med)/(ct.med-bl.med))
		case !hasFast && ts.n > 0 && ct.n > 0 && bl.n > 0:
			w("| CPU µs/span above baseline (medians) | %.2f | %.2f | 0 | %.2f | | |\n", ts.med-bl.med, ct.med-bl.med, (ts.med-bl.med)/(ct.med-bl.med))
		}
		w("\n")
		rep.classTable(&b, hasFast)
		w("Targets (tailsift):\n\n")
		for _, t := range rep.targets() {
			v := "**met**"
			if !t.OK {
				v = "**MISSED**"
			}
			w("- %s: %s — %s\n", t.Name, v, t.Detail)
		}
		w("\n")
		if ft := rep.fastTargets(); len(ft) > 0 {
			w("Targets (fast path, the `tailsift` receiver):\n\n")
			for _, t := range ft {
				v := "**met**"
				if !t.OK {
					v = "**MISSED**"
				}
				w("- %s: %s — %s\n", t.Name, v, t.Detail)
			}
			w("\n")
		}
		w("Per run:\n\n| run | collector | accepted/s | CPU µs/span | RSS mean / peak MB | buffered spans | p99 added ms | error / slow complete %% | other load CPU0 | problems |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, r := range rep.Side {
			w("| %s | %s | %.0f | %.2f | %.0f / %.0f | %.0f | %s | %s / %s | %.2f | %s |\n", r.Label, r.Kind, r.WindowAcceptedRate, r.CPUMicrosPerSpan,
				r.RSSMeanMB, r.RSSPeakMB, r.BufferedSpansMean, optf(r.P99AddedMs, "%.0f"), optf(r.ErrorCompletePct, "%.2f"), optf(r.SlowCompletePct, "%.2f"),
				max(0, r.OtherCPU0), strings.Join(r.Problems, "; "))
		}
		w("\n")

	}

	if len(rep.Sat) > 0 {
		w("## Saturation (one core; warm-up %v, window %v per step, rate ×%g)\n\n", o.SatWarmup, o.SatWindow, o.SatFactor)
		w("Two rules judge the same steps:\n\n")
		w("- **Relaxed** (the ladder's rule: it stops at the first rate failing it): a step passes when the loadgen's accepted spans are ≥ 99 %% of offered (and, as a sanity check against a stalled generator, the window's accepted rate ≥ 85 %% of the nominal rate: the workload is bursty), no trace was decided early for lack of room (tailsift `early_decisions{reason=\"memory\"}` = 0; contrib `sampling_trace_dropped_too_early` = `traces_dropped_too_large` = 0 and `traces_on_memory` < `num_traces`), every trace was decided within max_wait + 10 s of the end of the load, and the p99 added decision latency is ≤ 1 s beyond the decision point (tailsift: 1000 ms as measured; contrib: %.0f ms, because its 1 s ticker decides 2–3 s after the root, 0–1 s after the 2 s the sink subtracts). A failing step is repeated %d× before the ladder stops.\n", latencyLimit(kindContrib), o.SatRetry)
		w("- **Strict** (the issue's rule): accepted = offered (the loadgen's accepted spans ≥ %.1f %% of offered), no trace decided early for lack of room, and p99 added decision latency ≤ %.0f ms for every collector (no allowance for contrib's ticker); the relaxed rule's other conditions still apply. The strict rate is the highest rate below the first rate none of whose tries passes strictly; as retries follow relaxed failures only, a step that passes the relaxed rule but not the strict one has a single try.\n\n", 100*strictAccepted, strictLatencyMs)
		w("Highest passing rate:\n\n")
		for _, k := range samplers {
			s := rep.SatRate[k]
			if s.StepsTried == 0 {
				continue
			}
			if st := rep.strictSat(k); st == s {
				w("- **%s**: relaxed and strict %s\n", k, satSummary(s))
			} else {
				w("- **%s**: relaxed %s; strict %s\n", k, satSummary(s), satSummary(st))
			}
		}
		if sr := rep.SatRate[kindContrib].Rate; sr > 0 && o.Rate > sr {
			w("\n**Warning: the side-by-side rate %.0f is above contrib's measured saturation %.0f.**\n", o.Rate, sr)
		}
		w("\n| step | collector | offered/s | accepted/s (window) | accepted/offered %% | CPU µs/span | CPU cores | RSS mean / peak MB | buffered spans | p99 added ms | error / slow complete %% | other load CPU0 | pass (relaxed) | reason | strict |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n")
		for _, s := range rep.Sat {
			acc := "—"
			if s.Loadgen != nil && s.Loadgen.OfferedSpans > 0 {
				acc = fmt.Sprintf("%.2f", 100*float64(s.Loadgen.AcceptedSpans)/float64(s.Loadgen.OfferedSpans))
			}
			strict := "true"
			if extra := strictExtra(s); !s.Pass || extra != "" {
				strict = "false"
				if extra != "" {
					strict += ": " + extra
				}
			}
			w("| %s | %s | %.0f | %.0f | %s | %.2f | %.2f | %.0f / %.0f | %.0f | %s | %s / %s | %.2f | %v | %s | %s |\n", s.Label, s.Kind, s.Rate, s.WindowAcceptedRate, acc,
				s.CPUMicrosPerSpan, s.CPUUtil, s.RSSMeanMB, s.RSSPeakMB, s.BufferedSpansMean, optf(s.P99AddedMs, "%.0f"),
				optf(s.ErrorCompletePct, "%.1f"), optf(s.SlowCompletePct, "%.1f"), max(0, s.OtherCPU0), s.Pass, s.Reason, strict)
		}
		w("\n![CPU µs/span and RSS against offered rate](%s)\n\n", rep.svgName())
	}

	rep.sizing(&b)

	if rep.Profile != nil {
		w("## CPU profile of tailsift (%d s at %.0f spans/s, separate run)\n\n", o.ProfileSeconds, o.Rate)
		w("Run: %.2f µs/span, %.3f cores, p99 added %s ms. `go tool pprof -top -nodecount=30 bin/otelcol-tailsift %s`:\n\n```\n%s```\n\n",
			rep.Profile.CPUMicrosPerSpan, rep.Profile.CPUUtil, optf(rep.Profile.P99AddedMs, "%.0f"), filepath.Base(rep.Profile.ProfileFile), rep.ProfTop)
	}
	var probs []string
	for _, r := range append(append([]*runResult{}, rep.Side...), rep.Profile) {
		if r != nil {
			for _, p := range r.Problems {
				probs = append(probs, fmt.Sprintf("%s %s: %s", r.Label, r.Kind, p))
			}
		}
	}
	for _, s := range rep.Sat {
		for _, p := range s.Problems {
			probs = append(probs, fmt.Sprintf("%s %s: %s", s.Label, s.Kind, p))
		}
	}
	if len(rep.Notes)+len(probs) > 0 {
		w("## Notes\n\n")
		for _, n := range append(rep.Notes, probs...) {
			w("- %s\n", n)
		}
		w("\n")
	}
	return b.String()
}

// classTable is the sink's scoring per workload class, in the side-by-side
// table's collector columns (the baseline's nop exporter sends nothing to
// the sink, so it has none).
func (rep *report) classTable(b *strings.Builder, hasFast bool) {
	classes := rep.sinkClasses()
	if len(classes) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("Sink scoring per workload class (traces; median [min–max] over the runs). Late: a span of the trace was held back 10–30 s by the load generator. Complete: kept with every span sent; partial: kept with spans missing; duplicated: kept with a span that arrived more than once. The adjusted count is Σ 1/p over the kept traces (p from the `th` in tracestate; a trace without `th` counts 0) against the traces sent. Anomaly recall: anomaly traces kept ÷ sent. The baseline sends nothing to the sink.\n\n")
	if hasFast {
		w("| sink, per class | tailsift | fastpath | contrib |\n|---|---:|---:|---:|\n")
	} else {
		w("| sink, per class | tailsift | contrib |\n|---|---:|---:|\n")
	}
	for _, r := range classRows(classes) {
		ts, ct := rep.med(kindTailsift, r.get).cell(r.fmt), rep.med(kindContrib, r.get).cell(r.fmt)
		if hasFast {
			w("| %s | %s | %s | %s |\n", r.name, ts, rep.med(kindFastpath, r.get).cell(r.fmt), ct)
		} else {
			w("| %s | %s | %s |\n", r.name, ts, ct)
		}
	}
	w("\n")
}

// The strict saturation rule (the issue's): accepted = offered, taken as
// ≥ 99.9 % of the loadgen's offered spans, and p99 added latency ≤ 1 s for
// both collectors, on top of the relaxed rule of judge.
const (
	strictAccepted  = 0.999
	strictLatencyMs = 1000.0
)

// strictExtra is why a step fails the strict rule beyond what judge (the
// relaxed rule) reported: "" when it adds nothing. A step the relaxed rule
// failed fails the strict one too.
func strictExtra(s *satStep) string {
	if strings.HasPrefix(s.Reason, "loadgen") {
		return "" // the step says nothing about the collector
	}
	var why []string
	if lg := s.Loadgen; lg != nil && lg.OfferedSpans > 0 {
		acc := float64(lg.AcceptedSpans) / float64(lg.OfferedSpans)
		if acc < strictAccepted && acc >= 0.99 { // below 99 % judge said so
			why = append(why, fmt.Sprintf("accepted %.2f%% of offered < %.1f%%", 100*acc, 100*strictAccepted))
		}
	}
	if p := s.P99AddedMs; p != nil && *p > strictLatencyMs && *p <= latencyLimit(s.Kind) {
		why = append(why, fmt.Sprintf("p99 added latency %.0f ms > %.0f ms", *p, strictLatencyMs))
	}
	return strings.Join(why, "; ")
}

// strictSat is the saturation outcome of k's ladder under the strict rule:
// rates in ladder order, a rate passing when one of its tries passes, up to
// the first rate that does not (or a step the load generator could not
// offer).
func (rep *report) strictSat(k kind) satOutcome {
	var out satOutcome
	var steps []*satStep
	for _, s := range rep.Sat {
		if s.Kind == k {
			steps = append(steps, s)
		}
	}
	for i := 0; i < len(steps); {
		rate := steps[i].Rate
		out.StepsTried++
		pass, why := false, ""
		for ; i < len(steps) && steps[i].Rate == rate; i++ {
			s := steps[i]
			if strings.HasPrefix(s.Reason, "loadgen") {
				out.LoadgenCap = true
				return out
			}
			extra := strictExtra(s)
			if s.Pass && extra == "" {
				pass = true
				continue
			}
			why = s.Reason
			if extra != "" {
				if why != "" {
					why += "; "
				}
				why += extra
			}
		}
		if !pass {
			out.FirstFail, out.FailReason = rate, why
			return out
		}
		out.Rate = rate
	}
	return out
}

// satSummary describes a saturation outcome: the rate (bold) and how the
// ladder ended.
func satSummary(s satOutcome) string {
	switch {
	case s.LoadgenCap:
		return fmt.Sprintf("**≥ %.0f spans/s** (the load generator could not offer more on CPU 1; not saturated)", s.Rate)
	case s.FirstFail > 0 && s.Rate == 0:
		return fmt.Sprintf("**< %.0f spans/s** (the first step failed: %s)", s.FirstFail, s.FailReason)
	case s.FirstFail > 0:
		return fmt.Sprintf("**%.0f spans/s** (next step %.0f failed: %s)", s.Rate, s.FirstFail, s.FailReason)
	default:
		return fmt.Sprintf("**≥ %.0f spans/s** (ladder ended without a failure)", s.Rate)
	}
}

func optf(p *float64, format string) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf(format, *p)
}

// fit is a least-squares line y = a + b·x.
type fit struct {
	a, b, r2 float64
	n        int
}

func linfit(x, y []float64) (fit, bool) {
	n := float64(len(x))
	if len(x) < 3 {
		return fit{}, false
	}
	var sx, sy, sxx, sxy, syy float64
	for i := range x {
		sx, sy, sxx, sxy, syy = sx+x[i], sy+y[i], sxx+x[i]*x[i], sxy+x[i]*y[i], syy+y[i]*y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return fit{}, false
	}
	b := (n*sxy - sx*sy) / d
	a := (sy - b*sx) / n
	var r2 float64
	if vy := n*syy - sy*sy; vy > 0 {
		c := n*sxy - sx*sy
		r2 = c * c / (d * vy)
	}
	return fit{a, b, r2, len(x)}, true
}

// sizing derives cores and memory for large rates. With saturation data it
// fits, over the passing steps of each collector, CPU cores used against the
// accepted rate (cores = α + β·R: β is the marginal CPU per span, α the
// fixed cost) and mean RSS against buffered spans (RSS = a + b·S: b is the
// marginal bytes per buffered span, a the fixed memory). Without it, it
// uses the side-by-side medians (c = CPU µs/span, B = (RSS − idle) per
// buffered span, M₀ = idle RSS).
func (rep *report) sizing(b *strings.Builder) {
	const util = 0.7
	rates := []float64{100e3, 1e6, 10e6}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	type model struct {
		alpha, beta  float64 // cores, cores per span/s
		mem0, bytes  float64 // bytes, bytes per buffered span
		hold         float64 // s
		sat          float64
		cpuFit, mFit fit
		fitted       bool
		sideC, sideB float64
		sideN        int     // side-by-side runs
		lo, hi       float64 // offered rates of the passing steps fitted
		noFit        string  // why there is no fit
	}
	ms := map[kind]*model{}
	for _, k := range pair {
		c := rep.med(k, func(r *runResult) (float64, bool) { return pos(r.CPUMicrosPerSpan) })
		h := rep.med(k, func(r *runResult) (float64, bool) { return pos(r.MeanHoldS) })
		by := rep.med(k, func(r *runResult) (float64, bool) { return pos(r.BytesPerBufSpanRSS) })
		id := rep.med(k, func(r *runResult) (float64, bool) { return pos(r.RSSIdleMB) })
		if c.n == 0 || h.n == 0 || by.n == 0 {
			w("## Sizing\n\nNot computed: it needs side-by-side runs of both tailsift and contrib that measured CPU, buffered spans and RSS; this run has %d of %s.\n\n", min(c.n, h.n, by.n), k)
			return
		}
		m := &model{alpha: 0, beta: c.med * 1e-6, mem0: id.med * mb, bytes: by.med, hold: h.med, sat: rep.SatRate[k].Rate, sideC: c.med, sideB: by.med, sideN: c.n}
		var rx, cy, sx, ry []float64
		ladder := false
		for _, s := range rep.Sat {
			ladder = ladder || s.Kind == k
			if s.Kind != k || !s.Pass || s.BufferedSpansMean <= 0 {
				continue
			}
			rx, cy = append(rx, s.WindowAcceptedRate), append(cy, s.CPUUtil)
			sx, ry = append(sx, s.BufferedSpansMean), append(ry, s.RSSMeanMB*mb)
			if m.lo == 0 || s.Rate < m.lo {
				m.lo = s.Rate
			}
			m.hi = max(m.hi, s.Rate)
		}
		cf, ok1 := linfit(rx, cy)
		mf, ok2 := linfit(sx, ry)
		switch {
		case !ladder:
			m.noFit = fmt.Sprintf("this run has no %s saturation ladder", k)
		case len(rx) < 3:
			m.noFit = fmt.Sprintf("%s has %d passing saturation steps, 3 needed", k, len(rx))
		case !ok1 || !ok2 || cf.b <= 0 || mf.b <= 0:
			m.noFit = fmt.Sprintf("%s's fit has no positive slope (β %.2f µs/span, b %.0f B)", k, cf.b*1e6, mf.b)
		default:
			m.alpha, m.beta, m.mem0, m.bytes, m.cpuFit, m.mFit, m.fitted = max(cf.a, 0), cf.b, max(mf.a, 0), mf.b, cf, mf, true
		}
		ms[k] = m
	}
	fitted := ms[kindTailsift].fitted && ms[kindContrib].fitted
	if !fitted { // the same model for both
		for _, k := range pair {
			m := ms[k]
			m.alpha, m.beta, m.mem0, m.bytes = 0, m.sideC*1e-6, rep.med(k, func(r *runResult) (float64, bool) { return pos(r.RSSIdleMB) }).med*mb, m.sideB
		}
	}
	w("## Sizing\n\n")
	// Where the figures come from: this report's own runs, nothing else.
	ts, ct := ms[kindTailsift], ms[kindContrib]
	w("Data: this run only (started %s, mode `%s`, tailsift sources sha256 %s): ", rep.Started.UTC().Format("2006-01-02 15:04 MST"), rep.Opts.Mode, rep.SourceSum)
	if fitted {
		w("the fit over tailsift's passing saturation steps at %.0f–%.0f spans/s offered (%d steps) and contrib's at %.0f–%.0f (%d steps); W from the side-by-side runs (%d tailsift, %d contrib) at %.0f spans/s.\n\n",
			ts.lo, ts.hi, ts.cpuFit.n, ct.lo, ct.hi, ct.cpuFit.n, ts.sideN, ct.sideN, rep.Opts.Rate)
	} else {
		var why []string
		for _, k := range pair {
			if ms[k].noFit != "" {
				why = append(why, ms[k].noFit)
			}
		}
		w("the medians of the side-by-side runs (%d tailsift, %d contrib) at %.0f spans/s; no saturation fit because %s.\n\n", ts.sideN, ct.sideN, rep.Opts.Rate, strings.Join(why, " and "))
	}
	if fitted {
		w("Fitted over each collector's passing saturation steps (one collector per core, as measured): CPU cores used against accepted rate, `cores = α + β·R`, and mean RSS against buffered spans, `RSS = a + b·S`. β is the marginal CPU per span, b the marginal bytes per buffered span (it includes the Go GC's headroom and whatever else grows with the rate, e.g. receive buffers). W is the mean time a span is buffered, from the side-by-side runs (buffered spans ÷ accepted rate).\n\n")
		w("    instances(R) = ⌈ R · β / (%.0f %% − α) ⌉        one core each, run at most %.0f %% busy\n", util*100, util*100)
		w("    memory(R)    = instances(R) · a + R · W · b\n\n")
	} else {
		w("From the side-by-side medians (no saturation fit): β = c = collector CPU µs per span, b = B = (RSS − idle RSS) per buffered span, a = M₀ = idle RSS, W = buffered spans ÷ accepted rate.\n\n")
		w("    instances(R) = ⌈ R · c / (%.0f %% · 10⁶) ⌉      one core each, run at most %.0f %% busy\n", util*100, util*100)
		w("    memory(R)    = instances(R) · M₀ + R · W · B\n\n")
	}
	w("The decision wait is tailsift `completion.quiet: 2s` / contrib `decision_wait_after_root_received: 2s` (W as measured); the last column assumes every span waits the full 30 s (`max_wait` / `decision_wait`, e.g. root spans that never arrive). Not included: the load-balancing tier in front (trace-ID routing), network, exporter retries, GOMEMLIMIT tuning.\n\n")
	w("| collector | β (µs/span) | α (cores) | a (MB) | b (B / buffered span) | W (s) | side-by-side c (µs/span) | side-by-side B | fit R² (CPU, RSS) | measured saturation (relaxed) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, k := range pair {
		m := ms[k]
		sat := "—"
		if m.sat > 0 {
			sat = fmt.Sprintf("%.0f spans/s", m.sat)
		}
		r2 := "—"
		switch {
		case m.fitted && fitted:
			r2 = fmt.Sprintf("%.2f, %.2f (%d steps)", m.cpuFit.r2, m.mFit.r2, m.cpuFit.n)
		case m.fitted:
			r2 = fmt.Sprintf("%.2f, %.2f (%d steps; not used)", m.cpuFit.r2, m.mFit.r2, m.cpuFit.n)
		}
		w("| %s | %.2f | %.3f | %.0f | %.0f | %.2f | %.2f | %.0f | %s | %s |\n", k, m.beta*1e6, m.alpha, m.mem0/mb, m.bytes, m.hold, m.sideC, m.sideB, r2, sat)
	}
	w("\n| rate (spans/s) | collector | instances (cores) | spans/s per instance | memory at W | memory if W = 30 s |\n|---:|---|---:|---:|---:|---:|\n")
	for _, R := range rates {
		for _, k := range pair {
			m := ms[k]
			per := (util - m.alpha) / m.beta
			if per <= 0 {
				w("| %s | %s | — | — | — | — |\n", human(R), k)
				continue
			}
			n := math.Ceil(R / per)
			w("| %s | %s | %.0f | %.0f | %s | %s |\n", human(R), k, n, per, gib(n*m.mem0+R*m.hold*m.bytes), gib(n*m.mem0+R*30*m.bytes))
		}
	}
	w("\n")
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func gib(b float64) string {
	if b >= 10*(1<<30) {
		return fmt.Sprintf("%.0f GiB", b/(1<<30))
	}
	return fmt.Sprintf("%.1f GiB", b/(1<<30))
}

// sourceSum is the sha256 over the sorted non-test .go files of the
// tailsift processor sources (as in the README's in-process results).
func sourceSum(repo string) string {
	var files []string
	for _, d := range []string{"internal", "processor", "sampling"} {
		_ = filepath.WalkDir(filepath.Join(repo, d), func(p string, de fs.DirEntry, err error) error {
			if err == nil && !de.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(repo, p)
		fmt.Fprintf(h, "%s\n", rel)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12] + "…"
}
