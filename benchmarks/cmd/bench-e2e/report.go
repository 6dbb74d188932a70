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

	"github.com/tailsift/tailsift/internal/sinkreport"
)

// row is one metric of the side-by-side table.
type row struct {
	name  string
	fmt   string // value format
	get   func(*runResult) (float64, bool)
	ratio bool // print tailsift/contrib and vs-baseline ratios
	kinds []kind
}

// The getters of a row say whether a run has the figure at all:

// known is a figure every run has.
func known(v float64) (float64, bool) { return v, true }

// knownScaled is an optional figure (nil when the run lacks it), times scale.
func knownScaled(p *float64, scale float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p * scale, true
}

// positive is a figure a run has only when it is above 0.
func positive(v float64) (float64, bool) { return v, v > 0 }

// sideKinds: every kind of the side-by-side table;
// samplers: the kinds that sample; pair: the two the sizing compares.
var sideKinds = []kind{kindTailsift, kindContrib, kindBaseline, kindFastpath}
var samplers = []kind{kindTailsift, kindContrib, kindFastpath}
var pair = []kind{kindTailsift, kindContrib}

var sideRows = []row{
	{"accepted spans/s in the window", "%.0f", func(r *runResult) (float64, bool) { return known(r.WindowAcceptedRate) }, false, sideKinds},
	{"**collector CPU µs / accepted span**", "%.2f", func(r *runResult) (float64, bool) { return positive(r.CPUMicrosPerSpan) }, true, sideKinds},
	{"collector CPU (cores)", "%.3f", func(r *runResult) (float64, bool) { return known(r.CPUUtil) }, true, sideKinds},
	{"collector CPU at idle, before load (cores)", "%.4f", func(r *runResult) (float64, bool) { return known(r.IdleCPU) }, false, sideKinds},
	{"RSS idle, before load (MB)", "%.1f", func(r *runResult) (float64, bool) { return positive(r.RSSIdleMB) }, true, sideKinds},
	{"**RSS mean in the window (MB)**", "%.1f", func(r *runResult) (float64, bool) { return positive(r.RSSMeanMB) }, true, sideKinds},
	{"RSS peak in the window (MB)", "%.1f", func(r *runResult) (float64, bool) { return positive(r.RSSPeakMB) }, true, sideKinds},
	{"Go heap mean in the window (MB)", "%.1f", func(r *runResult) (float64, bool) { return positive(r.HeapMeanMB) }, true, sideKinds},
	{"buffered spans (mean)", "%.0f", func(r *runResult) (float64, bool) { return positive(r.BufferedSpansMean) }, true, samplers},
	{"buffered traces (mean)", "%.0f", func(r *runResult) (float64, bool) { return positive(r.BufferedTracesMean) }, true, samplers},
	{"mean hold per span, s (buffered ÷ rate)", "%.2f", func(r *runResult) (float64, bool) { return positive(r.MeanHoldS) }, true, samplers},
	{"**B / buffered span (RSS − idle RSS)**", "%.0f", func(r *runResult) (float64, bool) { return positive(r.BytesPerBufSpanRSS) }, true, samplers},
	{"B / buffered span (RSS − baseline's mean RSS)", "%.0f", nil, true, samplers},
	{"B / buffered span (heap − idle heap; tailsift keeps span records off the heap)", "%.0f", func(r *runResult) (float64, bool) { return positive(r.BytesPerBufSpanHeap) }, true, samplers},
	{"B / buffered span (tailsift's / fastpath's buffered_bytes)", "%.0f", func(r *runResult) (float64, bool) { return positive(r.BytesPerBufSpanAcct) }, false, []kind{kindTailsift, kindFastpath}},
	{"p50 added decision latency (ms)", "%.0f", func(r *runResult) (float64, bool) { return knownScaled(r.P50AddedMs, 1) }, true, samplers},
	{"**p99 added decision latency (ms)**", "%.0f", func(r *runResult) (float64, bool) { return knownScaled(r.P99AddedMs, 1) }, true, samplers},
	{"**error traces complete (%)**", "%.2f", func(r *runResult) (float64, bool) { return knownScaled(r.ErrorCompletePct, 1) }, false, samplers},
	{"**slow traces complete (%)**", "%.2f", func(r *runResult) (float64, bool) { return knownScaled(r.SlowCompletePct, 1) }, false, samplers},
	{fastKeptRow, "%.4f", func(r *runResult) (float64, bool) { return knownScaled(r.FastKeptFraction, 1) }, false, samplers},
	{"fast kept z-score (binomial)", "%+.2f", func(r *runResult) (float64, bool) { return knownScaled(r.FastZ, 1) }, false, samplers},
	{"adjusted trace count, rel. error (%)", "%+.2f", func(r *runResult) (float64, bool) { return knownScaled(r.AdjTracesRelErr, 100) }, false, samplers},
	{"adjusted span count, rel. error (%)", "%+.2f", func(r *runResult) (float64, bool) { return knownScaled(r.AdjSpansRelErr, 100) }, false, samplers},
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
	{"other load on CPU 0 (cores)", "%.2f", func(r *runResult) (float64, bool) { return known(max(0, r.OtherCPU0)) }, false, sideKinds},
	{"CPU 1 busy: loadgen + sink + other (cores)", "%.2f", func(r *runResult) (float64, bool) { return known(r.CPU1Busy) }, false, sideKinds},
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
	field := func(class string, v func(*sinkreport.ClassRow) (float64, bool)) func(*runResult) (float64, bool) {
		return func(r *runResult) (float64, bool) {
			c := r.Score.Class(class)
			if c == nil {
				return 0, false
			}
			return v(c)
		}
	}
	for _, cl := range classes {
		for _, x := range []struct {
			name, fmt string
			v         func(*sinkreport.ClassRow) (float64, bool)
		}{
			{"traces sent", "%.0f", func(c *sinkreport.ClassRow) (float64, bool) { return known(float64(c.TracesSent)) }},
			{"of them late", "%.0f", func(c *sinkreport.ClassRow) (float64, bool) { return known(float64(c.TracesLate)) }},
			{"kept", "%.0f", func(c *sinkreport.ClassRow) (float64, bool) { return known(float64(c.TracesKept)) }},
			{"complete", "%.0f", func(c *sinkreport.ClassRow) (float64, bool) { return known(float64(c.TracesComplete)) }},
			{"partial", "%.0f", func(c *sinkreport.ClassRow) (float64, bool) { return known(float64(c.TracesPartial)) }},
			{"duplicated", "%.0f", func(c *sinkreport.ClassRow) (float64, bool) { return known(float64(c.TracesDuplicated)) }},
			{"adjusted trace count, rel. error (%)", "%+.2f", func(c *sinkreport.ClassRow) (float64, bool) { return knownScaled(c.Adjusted.TracesRelError, 100) }},
		} {
			out = append(out, row{cl + ": " + x.name, x.fmt, field(cl, x.v), false, samplers})
		}
	}
	return append(out, row{"anomaly recall (% of anomaly traces kept)", "%.2f", func(r *runResult) (float64, bool) {
		if r.Score == nil {
			return 0, false
		}
		return knownScaled(r.Score.AnomalyRecall, 100)
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
	return agg(spreadOf(v))
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

// markdownWriter collects the report's markdown.
type markdownWriter struct {
	strings.Builder
}

func (md *markdownWriter) printf(format string, args ...any) {
	fmt.Fprintf(&md.Builder, format, args...)
}

// markdown renders the report: its header, the side-by-side runs, the
// saturation ladders, the sizing, the CPU profile and the notes.
func (rep *report) markdown() string {
	var md markdownWriter
	rep.writeHeader(&md)
	if len(rep.Side) > 0 {
		rep.writeSideBySide(&md)
	}
	if len(rep.SideB) > 0 {
		rep.writeAB(&md)
	}
	if len(rep.Sat) > 0 {
		rep.writeSaturation(&md)
	}
	rep.sizing(&md)
	rep.writeProfile(&md)
	rep.writeNotes(&md)
	return md.String()
}

// writeHeader writes the title, the machine, the mode and the command.
func (rep *report) writeHeader(md *markdownWriter) {
	o := rep.Opts
	md.printf("# End-to-end: tailsift vs contrib tail_sampling v0.161.0 (%s)\n\n", rep.Started.UTC().Format("2006-01-02 15:04 MST"))
	m := rep.Machine
	md.printf("Machine: %d CPUs (%s), %.1f GiB RAM, Linux %s, runner %s. Load average (1/5/15 min) at start %s, at end %s. ",
		m.NumCPU, m.Model, m.MemGiB, m.Kernel, m.GoVersion, rep.LoadAvg[0], rep.LoadAvg[1])
	if rep.Pinned {
		md.printf("Collector pinned to CPU 0, loadgen and sink to CPU 1 (`taskset -c`).\n\n")
	} else {
		md.printf("**Unpinned** (taskset missing).\n\n")
	}
	md.printf("Mode `%s`, %s → %s (%s). tailsift sources sha256 %s.\n\n", o.Mode, rep.Started.UTC().Format("15:04:05"),
		rep.Finished.UTC().Format("15:04:05 MST"), rep.Finished.Sub(rep.Started).Round(time.Second), rep.SourceSum)
	md.printf("Command: `%s`\n\n", strings.Join(rep.Commands, "`, `"))
	if o.Rescue > 0 {
		md.printf("**tailsift runs with `rescue: {window: %s}`** (off by default): dropped traces are held so that a late ERROR span keeps them; its memory shows in tailsift's RSS.\n\n", o.Rescue)
	}
}

// sideKindsRan are the kinds of the side-by-side runs, in the order the
// section's title names them.
func (rep *report) sideKindsRan() []string {
	var ran []string
	for _, k := range []kind{kindTailsift, kindFastpath, kindContrib, kindBaseline} {
		if slices.ContainsFunc(rep.Side, func(r *runResult) bool { return r.Kind == k }) {
			ran = append(ran, string(k))
		}
	}
	return ran
}

// writeSideBySide writes the side-by-side section: the metric table, the
// sink's per-class table, the targets and the per-run table.
func (rep *report) writeSideBySide(md *markdownWriter) {
	o := rep.Opts
	ran := rep.sideKindsRan()
	hasFast := slices.Contains(ran, string(kindFastpath))
	md.printf("## Side by side at %.0f spans/s offered (%d × %s; warm-up %v, window %v)\n\n", o.Rate, o.Pairs, strings.Join(ran, ", "), o.Warmup, o.Window)
	md.printf("Median [min–max] over the runs; ratios are of medians. Baseline = the same receiver into the `nop` exporter.")
	if hasFast {
		md.printf(" fastpath = the `tailsift` receiver (raw OTLP bytes buffered, only kept traces decoded) straight into `otlp_grpc`, no processor; its baseline is still the `otlp` receiver into `nop`.")
	}
	md.printf("\n\n")
	rep.writeSideTable(md, hasFast)
	md.printf("\n")
	rep.classTable(md, hasFast)
	writeTargets(md, "Targets (tailsift):\n\n", rep.targets(), true)
	writeTargets(md, "Targets (fast path, the `tailsift` receiver):\n\n", rep.fastTargets(), false)
	rep.writePerRunTable(md)
}

// fastKeptRow names the side table's row of the fast traces' kept
// fraction; writeSideTable writes the run's configured fraction into it.
const fastKeptRow = "fast kept fraction"

// writeSideTable writes the side-by-side metric table, one row per metric
// and the CPU above the baseline's last.
func (rep *report) writeSideTable(md *markdownWriter, hasFast bool) {
	if hasFast {
		md.printf("| metric | tailsift | fastpath | contrib | baseline | tailsift / contrib | tailsift / baseline | contrib / baseline | fastpath / contrib | fastpath / baseline |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	} else {
		md.printf("| metric | tailsift | contrib | baseline | tailsift / contrib | tailsift / baseline | contrib / baseline |\n|---|---:|---:|---:|---:|---:|---:|\n")
	}
	baseRSS := rep.med(kindBaseline, func(r *runResult) (float64, bool) { return positive(r.RSSMeanMB) })
	for _, r := range sideRows {
		name := r.name
		if name == fastKeptRow {
			name = fmt.Sprintf("fast kept fraction (configured %g)", fastPercentOr(rep.Opts.FastPercent)/100)
		}
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
			md.printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, a[kindTailsift].cell(r.fmt), a[kindFastpath].cell(r.fmt), a[kindContrib].cell(r.fmt), a[kindBaseline].cell(r.fmt), rts, rtb, rcb, rfc, rfb)
		} else {
			md.printf("| %s | %s | %s | %s | %s | %s | %s |\n", name, a[kindTailsift].cell(r.fmt), a[kindContrib].cell(r.fmt), a[kindBaseline].cell(r.fmt), rts, rtb, rcb)
		}
	}
	cpu := func(r *runResult) (float64, bool) { return positive(r.CPUMicrosPerSpan) }
	ts, ct, bl := rep.med(kindTailsift, cpu), rep.med(kindContrib, cpu), rep.med(kindBaseline, cpu)
	fa := rep.med(kindFastpath, cpu)
	switch {
	case hasFast && ts.n > 0 && ct.n > 0 && bl.n > 0 && fa.n > 0:
		md.printf("| CPU µs/span above baseline (medians) | %.2f | %.2f | %.2f | 0 | %.2f | | | %.2f | |\n", ts.med-bl.med, fa.med-bl.med, ct.med-bl.med, (ts.med-bl.med)/(ct.med-bl.med), (fa.med-bl.med)/(ct.med-bl.med))
	case !hasFast && ts.n > 0 && ct.n > 0 && bl.n > 0:
		md.printf("| CPU µs/span above baseline (medians) | %.2f | %.2f | 0 | %.2f | | |\n", ts.med-bl.med, ct.med-bl.med, (ts.med-bl.med)/(ct.med-bl.med))
	}
}

// writeTargets writes a list of targets under title; an empty list is
// written only when always is set.
func writeTargets(md *markdownWriter, title string, list targetList, always bool) {
	if len(list) == 0 && !always {
		return
	}
	md.printf("%s", title)
	for _, t := range list {
		v := "**met**"
		if !t.OK {
			v = "**MISSED**"
		}
		md.printf("- %s: %s — %s\n", t.Name, v, t.Detail)
	}
	md.printf("\n")
}

// writePerRunTable writes one row per side-by-side run.
func (rep *report) writePerRunTable(md *markdownWriter) {
	md.printf("Per run:\n\n| run | collector | accepted/s | CPU µs/span | RSS mean / peak MB | buffered spans | p99 added ms | error / slow complete %% | other load CPU0 | problems |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.Side {
		md.printf("| %s | %s | %.0f | %.2f | %.0f / %.0f | %.0f | %s | %s / %s | %.2f | %s |\n", r.Label, r.Kind, r.WindowAcceptedRate, r.CPUMicrosPerSpan,
			r.RSSMeanMB, r.RSSPeakMB, r.BufferedSpansMean, optf(r.P99AddedMs, "%.0f"), optf(r.ErrorCompletePct, "%.2f"), optf(r.SlowCompletePct, "%.2f"),
			max(0, r.OtherCPU0), strings.Join(r.Problems, "; "))
	}
	md.printf("\n")
	rep.writePairRatios(md)
}

// writeSaturation writes the saturation section: the two rules, the
// highest passing rates and one row per step.
func (rep *report) writeSaturation(md *markdownWriter) {
	o := rep.Opts
	md.printf("## Saturation (one core; warm-up %v, window %v per step, rate ×%g)\n\n", o.SatWarmup, o.SatWindow, o.SatFactor)
	md.printf("Two rules judge the same steps:\n\n")
	md.printf("- **Relaxed** (the ladder's rule: it stops at the first rate failing it): a step passes when the loadgen's accepted spans are ≥ 99 %% of offered (and, as a sanity check against a stalled generator, the window's accepted rate ≥ 85 %% of the nominal rate: the workload is bursty), no trace was decided early for lack of room (tailsift `early_decisions{reason=\"memory\"}` = 0; contrib `sampling_trace_dropped_too_early` = `traces_dropped_too_large` = 0 and `traces_on_memory` < `num_traces`), every trace was decided within max_wait + 10 s of the end of the load, and the p99 added decision latency is ≤ 1 s beyond the decision point (tailsift: 1000 ms as measured; contrib: %.0f ms, because its 1 s ticker decides 2–3 s after the root, 0–1 s after the 2 s the sink subtracts). A failing step is repeated %d× before the ladder stops.\n", latencyLimit(kindContrib), o.SatRetry)
	md.printf("- **Strict** (the issue's rule): accepted = offered (the loadgen's accepted spans ≥ %.1f %% of offered), no trace decided early for lack of room, and p99 added decision latency ≤ %.0f ms for every collector (no allowance for contrib's ticker); the relaxed rule's other conditions still apply. The strict rate is the highest rate below the first rate none of whose tries passes strictly; as retries follow relaxed failures only, a step that passes the relaxed rule but not the strict one has a single try.\n\n", 100*strictAccepted, strictLatencyMs)
	md.printf("Highest passing rate:\n\n")
	for _, k := range samplers {
		s := rep.SatRate[k]
		if s.StepsTried == 0 {
			continue
		}
		if st := rep.strictSat(k); st == s {
			md.printf("- **%s**: relaxed and strict %s\n", k, satSummary(s))
		} else {
			md.printf("- **%s**: relaxed %s; strict %s\n", k, satSummary(s), satSummary(st))
		}
	}
	if sr := rep.SatRate[kindContrib].Rate; sr > 0 && o.Rate > sr {
		md.printf("\n**Warning: the side-by-side rate %.0f is above contrib's measured saturation %.0f.**\n", o.Rate, sr)
	}
	md.printf("\n| step | collector | offered/s | accepted/s (window) | accepted/offered %% | CPU µs/span | CPU cores | RSS mean / peak MB | buffered spans | p99 added ms | error / slow complete %% | other load CPU0 | pass (relaxed) | reason | strict |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n")
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
		md.printf("| %s | %s | %.0f | %.0f | %s | %.2f | %.2f | %.0f / %.0f | %.0f | %s | %s / %s | %.2f | %v | %s | %s |\n", s.Label, s.Kind, s.Rate, s.WindowAcceptedRate, acc,
			s.CPUMicrosPerSpan, s.CPUUtil, s.RSSMeanMB, s.RSSPeakMB, s.BufferedSpansMean, optf(s.P99AddedMs, "%.0f"),
			optf(s.ErrorCompletePct, "%.1f"), optf(s.SlowCompletePct, "%.1f"), max(0, s.OtherCPU0), s.Pass, s.Reason, strict)
	}
	md.printf("\n![CPU µs/span and RSS against offered rate](%s)\n\n", rep.svgName())
}

// writeProfile writes the CPU profile of tailsift, if the suite took one.
func (rep *report) writeProfile(md *markdownWriter) {
	o := rep.Opts
	if rep.Profile != nil {
		md.printf("## CPU profile of tailsift (%d s at %.0f spans/s, separate run)\n\n", o.ProfileSeconds, o.Rate)
		md.printf("Run: %.2f µs/span, %.3f cores, p99 added %s ms. `go tool pprof -top -nodecount=30 bin/otelcol-tailsift %s`:\n\n```\n%s```\n\n",
			rep.Profile.CPUMicrosPerSpan, rep.Profile.CPUUtil, optf(rep.Profile.P99AddedMs, "%.0f"), filepath.Base(rep.Profile.ProfileFile), rep.ProfTop)
	}
}

// writeNotes writes the suite's notes and every run's problems.
func (rep *report) writeNotes(md *markdownWriter) {
	var probs []string
	for _, r := range append(append(append([]*runResult{}, rep.Side...), rep.SideB...), rep.Profile) {
		if r != nil {
			for _, p := range r.Problems {
				probs = append(probs, fmt.Sprintf("%s %s: %s", r.Label, runName(r.Kind, r.Variant), p))
			}
		}
	}
	for _, s := range rep.Sat {
		for _, p := range s.Problems {
			probs = append(probs, fmt.Sprintf("%s %s: %s", s.Label, s.Kind, p))
		}
	}
	if len(rep.Notes)+len(probs) > 0 {
		md.printf("## Notes\n\n")
		for _, n := range append(rep.Notes, probs...) {
			md.printf("- %s\n", n)
		}
		md.printf("\n")
	}
}

// classTable is the sink's scoring per workload class, in the side-by-side
// table's collector columns (the baseline's nop exporter sends nothing to
// the sink, so it has none).
func (rep *report) classTable(md *markdownWriter, hasFast bool) {
	classes := rep.sinkClasses()
	if len(classes) == 0 {
		return
	}
	md.printf("Sink scoring per workload class (traces; median [min–max] over the runs). Late: a span of the trace was held back 10–30 s by the load generator. Complete: kept with every span sent; partial: kept with spans missing; duplicated: kept with a span that arrived more than once. The adjusted count is Σ 1/p over the kept traces (p from the `th` in tracestate; a trace without `th` counts 0) against the traces sent. Anomaly recall: anomaly traces kept ÷ sent. The baseline sends nothing to the sink.\n\n")
	if hasFast {
		md.printf("| sink, per class | tailsift | fastpath | contrib |\n|---|---:|---:|---:|\n")
	} else {
		md.printf("| sink, per class | tailsift | contrib |\n|---|---:|---:|\n")
	}
	for _, r := range classRows(classes) {
		ts, ct := rep.med(kindTailsift, r.get).cell(r.fmt), rep.med(kindContrib, r.get).cell(r.fmt)
		if hasFast {
			md.printf("| %s | %s | %s | %s |\n", r.name, ts, rep.med(kindFastpath, r.get).cell(r.fmt), ct)
		} else {
			md.printf("| %s | %s | %s |\n", r.name, ts, ct)
		}
	}
	md.printf("\n")
}

func optf(p *float64, format string) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf(format, *p)
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
