package main

import (
	"fmt"
	"slices"
	"strings"
)

// abPair is one round's run of a tailsift collector from each build.
type abPair struct {
	label string
	kind  kind
	a, b  *runResult
}

// abPairs matches every variant b run with the variant a run of the same
// round and kind, in the order the rounds ran.
func (rep *report) abPairs() []abPair {
	var out []abPair
	for _, b := range rep.SideB {
		i := slices.IndexFunc(rep.Side, func(a *runResult) bool { return a.Label == b.Label && a.Kind == b.Kind })
		if i >= 0 {
			out = append(out, abPair{label: b.Label, kind: b.Kind, a: rep.Side[i], b: b})
		}
	}
	return out
}

// writeAB writes the A/B section (-b-bin): per round, each tailsift
// collector's CPU per span from both builds and their ratio, then the
// ratio's median and range per collector. In a concurrent round both ran
// over the same seconds of the host, so the ratio spreads far less than
// either figure does (README "Concurrent rounds").
func (rep *report) writeAB(md *markdownWriter) {
	md.printf("## A/B: b = `%s`%s against a = `%s`\n\n", rep.Opts.BBin, bSetNote(rep.Opts.BSet), rep.Opts.TailsiftBin)
	md.printf("Each round ran both builds' collectors with the same traffic (same seed)")
	if rep.Opts.Concurrent {
		md.printf(", at the same time (-concurrent)")
	}
	md.printf(". b ÷ a is of the collector CPU µs per accepted span; below 1, b costs less.\n\n")
	md.printf("| round | collector | a: µs/span | b: µs/span | b ÷ a | a: p99 added (ms) | b: p99 added (ms) | a: error / slow complete (%%) | b: error / slow complete (%%) |\n")
	md.printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	ratios := map[kind][]float64{}
	var kinds []kind
	for _, p := range rep.abPairs() {
		r := p.b.CPUMicrosPerSpan / p.a.CPUMicrosPerSpan
		if !slices.Contains(kinds, p.kind) {
			kinds = append(kinds, p.kind)
		}
		ratios[p.kind] = append(ratios[p.kind], r)
		md.printf("| %s | %s | %.2f | %.2f | %.3f | %s | %s | %s / %s | %s / %s |\n", p.label, p.kind,
			p.a.CPUMicrosPerSpan, p.b.CPUMicrosPerSpan, r, optCell(p.a.P99AddedMs, "%.0f"), optCell(p.b.P99AddedMs, "%.0f"),
			optCell(p.a.ErrorCompletePct, "%.2f"), optCell(p.a.SlowCompletePct, "%.2f"),
			optCell(p.b.ErrorCompletePct, "%.2f"), optCell(p.b.SlowCompletePct, "%.2f"))
	}
	md.printf("\n")
	for _, k := range kinds {
		s := spreadOf(ratios[k])
		md.printf("- %s, b ÷ a over %d rounds: %s\n", k, s.n, s.cell("%.3f"))
	}
	md.printf("\n")
}

// optCell formats an optional figure, "—" when the run lacks it.
func optCell(p *float64, format string) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf(format, *p)
}

// bSetNote is " with" and -b-set's settings, or "" without any.
func bSetNote(sets []string) string {
	if len(sets) == 0 {
		return ""
	}
	return " with `" + strings.Join(sets, "`, `") + "`"
}
