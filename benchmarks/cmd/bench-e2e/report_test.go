package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"
)

// sinkJSON is a tailsift-sink/v1 report with five classes. errComplete
// of the 100 error traces are complete (the rest partial), anomalyKept of
// the 200 anomaly traces are kept, fastKept of the 1000 fast traces.
func sinkJSON(t *testing.T, p99 float64, errComplete, anomalyKept, fastKept int64, dup int64) *sinkreport.Report {
	t.Helper()
	cls := func(name string, sent, kept, complete, partial, dup int64, est float64) string {
		return fmt.Sprintf(`{"class":%q,"traces_sent":%d,"traces_kept":%d,"traces_complete":%d,"traces_partial":%d,"traces_duplicated":%d,
			"adjusted":{"traces_estimate":%g,"traces_true":%d,"traces_rel_error":%g}}`,
			name, sent, kept, complete, partial, dup, est, sent, (est-float64(sent))/float64(sent))
	}
	js := fmt.Sprintf(`{"schema":"tailsift-sink/v1","received":{"spans":1,"traces":1},"classes":[%s,%s,%s,%s,%s],
		"total":{"class":"total","adjusted":{"traces_rel_error":0.01},"latency_ms":{"count":10,"p50":%g,"p99":%g}},
		"fast_check":{"sent":1000,"kept":%d,"kept_fraction":%g,"z":0.5},"anomaly_recall":%g}`,
		cls("fast", 1000, fastKept, fastKept, 0, 0, float64(fastKept)*20),
		cls("slow", 50, 50, 50, 0, 0, 50),
		cls("error", 100, 100, errComplete, 100-errComplete, dup, 100),
		cls("anomaly", 200, anomalyKept, anomalyKept, 0, 0, 200),
		cls("huge", 10, 10, 10, 0, 0, 10),
		p99/2, p99, fastKept, float64(fastKept)/1000, float64(anomalyKept)/200)
	var s sinkreport.Report
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	return &s
}

// synthReport is three side-by-side rounds of tailsift, contrib and the
// baseline at 10000 spans/s, with round-dependent figures:
//
//	tailsift CPU 8/9/10 µs/span, B/buffered span 1500/1600/1700,
//	p99 60/70/120 ms, error complete 100/100/99 %, anomaly kept 10/12/14
//	contrib  CPU 20/18/22, B/buffered span 5000/4800/5200, p99 1500 ms,
//	error complete 100 %, anomaly kept 200, one duplicated error trace
func synthReport(t *testing.T) *report {
	t.Helper()
	rep := &report{Opts: options{Mode: "full", Rate: 10000, Pairs: 3, Warmup: 10 * time.Second, Window: 30 * time.Second,
		SatWarmup: 8 * time.Second, SatWindow: 20 * time.Second, SatFactor: 1.25, SatRetry: 1},
		Started:  time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC),
		Finished: time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC),
		Pinned:   true, SatRate: map[kind]satOutcome{}, SourceSum: "0123456789ab…"}
	for i := range 3 {
		label := fmt.Sprintf("pair%d", i+1)
		ts := &runResult{Kind: kindTailsift, Label: label, Rate: 10000, WindowAcceptedRate: 10000,
			CPUMicrosPerSpan: []float64{8, 9, 10}[i], RSSIdleMB: 40, RSSMeanMB: 100, BufferedSpansMean: 40000, MeanHoldS: 4,
			BytesPerBufSpanRSS: []float64{1500, 1600, 1700}[i],
			Score:              sinkJSON(t, []float64{60, 70, 120}[i], []int64{100, 100, 99}[i], []int64{10, 12, 14}[i], 50, 0)}
		ct := &runResult{Kind: kindContrib, Label: label, Rate: 10000, WindowAcceptedRate: 10000,
			CPUMicrosPerSpan: []float64{20, 18, 22}[i], RSSIdleMB: 60, RSSMeanMB: 300, BufferedSpansMean: 50000, MeanHoldS: 5,
			BytesPerBufSpanRSS: []float64{5000, 4800, 5200}[i],
			Score:              sinkJSON(t, 1500, 100, 200, 48, 1)}
		bl := &runResult{Kind: kindBaseline, Label: label, Rate: 10000, WindowAcceptedRate: 10000, CPUMicrosPerSpan: 6, RSSIdleMB: 30, RSSMeanMB: 50}
		for _, r := range []*runResult{ts, ct} {
			r.derive()
		}
		rep.Side = append(rep.Side, ts, ct, bl)
	}
	// Saturation ladders, judged as runSuite does (see TestStrictSaturation).
	step := func(k kind, label string, rate, accPct, p99 float64, lag float64) *satStep {
		offered := int64(100000)
		acc := int64(accPct / 100 * float64(offered))
		cpu := map[kind]float64{kindTailsift: 9, kindContrib: 20, kindFastpath: 5}[k]
		r := &runResult{Kind: k, Label: label, Rate: rate, WindowAcceptedRate: rate, P99AddedMs: &p99,
			CPUMicrosPerSpan: cpu, CPUUtil: cpu * rate * 1e-6, RSSMeanMB: 50 + rate/100, BufferedSpansMean: 5 * rate,
			Loadgen: &loadgenSummary{OfferedSpans: offered, AcceptedSpans: acc, RefusedSpans: offered - acc, MaxLagMs: lag}}
		return judge(r)
	}
	rep.Sat = []*satStep{
		step(kindTailsift, "sat1", 6000, 100, 50, 0),
		step(kindContrib, "sat1", 6000, 100, 900, 0),
		step(kindFastpath, "sat1", 6000, 100, 40, 0),
		step(kindTailsift, "sat2", 7500, 99.5, 80, 0),   // strict: accepted < 99.9 %
		step(kindContrib, "sat2", 7500, 100, 2500, 0),   // fails, then passes relaxed on the retry
		step(kindContrib, "sat2", 7500, 100, 1200, 0),   // strict: p99 > 1 s
		step(kindFastpath, "sat2", 7500, 100, 40, 2000), // the loadgen could not keep up
		step(kindTailsift, "sat3", 9400, 100, 90, 0),
		step(kindContrib, "sat3", 9400, 100, 100, 2000),
		step(kindTailsift, "sat4", 11800, 100, 1500, 0),
		step(kindTailsift, "sat4", 11800, 100, 1400, 0),
	}
	rep.SatRate = map[kind]satOutcome{
		kindTailsift: {Rate: 9400, FirstFail: 11800, FailReason: rep.Sat[10].Reason, StepsTried: 4},
		kindContrib:  {Rate: 7500, LoadgenCap: true, StepsTried: 3},
		kindFastpath: {Rate: 6000, LoadgenCap: true, StepsTried: 2},
	}
	return rep
}

func TestTargets(t *testing.T) {
	rep := synthReport(t)
	got := map[string]target{}
	var names []string
	for _, x := range rep.targets() {
		got[x.Name] = x
		names = append(names, x.Name)
	}
	want := []struct {
		name, detail string
		ok           bool
	}{
		{"CPU/span ≤ 1/2 of contrib's", "median 9.00 vs 20.00 µs/span: ratio 0.45", true},
		{"bytes per buffered span ≤ 1/3 of contrib's", "(RSS − idle RSS) ÷ buffered spans, median 1600 vs 5000 B: ratio 0.32", true},
		{"p99 added decision latency ≤ 100 ms", "worst run 120 ms (median 70)", false},
		{"100 % of error and slow traces complete in every run", "worst run: error 99.000 %, slow 100.000 % (of 3 and 3 runs)", false},
	}
	if len(names) != len(want) {
		t.Fatalf("targets %q, want %d", names, len(want))
	}
	for i, w := range want {
		x, ok := got[w.name]
		if !ok || names[i] != w.name {
			t.Errorf("target %d: got %q, want %q", i, names[i], w.name)
			continue
		}
		if x.Detail != w.detail || x.OK != w.ok {
			t.Errorf("%s: got %v %q, want %v %q", w.name, x.OK, x.Detail, w.ok, w.detail)
		}
	}
	if m := rep.targets().missed(); len(m) != 2 {
		t.Errorf("missed %+v", m)
	}

	// Without contrib's runs the ratios are not determined, but listed.
	noContrib := *rep
	noContrib.Side = nil
	for _, r := range rep.Side {
		if r.Kind != kindContrib {
			noContrib.Side = append(noContrib.Side, r)
		}
	}
	tl := noContrib.targets()
	if len(tl) != 4 || tl[0].Name != "CPU/span ≤ 1/2 of contrib's (NOT DETERMINED)" || tl[0].OK ||
		tl[1].Name != "bytes per buffered span ≤ 1/3 of contrib's (NOT DETERMINED)" || tl[1].Detail != "B / buffered span (RSS − idle RSS) measured in 3 tailsift and 0 contrib runs" {
		t.Errorf("without contrib: %+v", tl)
	}
	// Saturation only: nothing to judge (and no profile run triggered).
	noContrib.Side = nil
	if tl := noContrib.targets(); tl != nil {
		t.Errorf("without side-by-side runs: %+v", tl)
	}

	md := rep.markdown()
	containsAll(t, md, "report",
		"- CPU/span ≤ 1/2 of contrib's: **met** — median 9.00 vs 20.00 µs/span: ratio 0.45\n",
		"- bytes per buffered span ≤ 1/3 of contrib's: **met** — (RSS − idle RSS) ÷ buffered spans, median 1600 vs 5000 B: ratio 0.32\n",
		"- p99 added decision latency ≤ 100 ms: **MISSED** — worst run 120 ms (median 70)\n",
		"- 100 % of error and slow traces complete in every run: **MISSED** — worst run: error 99.000 %, slow 100.000 % (of 3 and 3 runs)\n",
	)
}

func TestClassTable(t *testing.T) {
	rep := synthReport(t)
	if got := rep.sinkClasses(); strings.Join(got, ",") != "fast,slow,error,anomaly,huge" {
		t.Errorf("classes %q", got)
	}
	md := rep.markdown()
	i, j := strings.Index(md, "| sink, per class | tailsift | contrib |"), strings.Index(md, "Targets (tailsift):")
	if i < 0 || j < i || !strings.Contains(md[:i], "| **collector CPU µs / accepted span** |") {
		t.Fatalf("no class table between the side-by-side table and the targets:\n%s", md)
	}
	table := md[i:j]
	containsAll(t, table, "class table",
		"| fast: traces sent | 1000 [1000–1000] | 1000 [1000–1000] |\n",
		"| fast: kept | 50 [50–50] | 48 [48–48] |\n",
		"| fast: adjusted trace count, rel. error (%) | +0.00 [+0.00–+0.00] | -4.00 [-4.00–-4.00] |\n",
		"| error: complete | 100 [99–100] | 100 [100–100] |\n",
		"| error: partial | 0 [0–1] | 0 [0–0] |\n",
		"| error: duplicated | 0 [0–0] | 1 [1–1] |\n",
		"| anomaly: kept | 12 [10–14] | 200 [200–200] |\n",
		"| huge: traces sent | 10 [10–10] | 10 [10–10] |\n",
		"| anomaly recall (% of anomaly traces kept) | 6.00 [5.00–7.00] | 100.00 [100.00–100.00] |\n",
	)
	if n := strings.Count(table, "\n| "); n != 5*7+1 { // below the header: 5 classes × 7 figures, recall
		t.Errorf("class table has %d rows:\n%s", n, table)
	}
	// With the fast path, its column sits between tailsift and contrib.
	fast := *rep.Side[0]
	fast.Kind = kindFastpath
	rep.Side = append(rep.Side, &fast)
	if md := rep.markdown(); !strings.Contains(md, "| sink, per class | tailsift | fastpath | contrib |\n") ||
		!strings.Contains(md, "| fast: kept | 50 [50–50] | 50 | 48 [48–48] |\n") {
		t.Errorf("fastpath class table:\n%s", md)
	}
}

func TestStrictSaturation(t *testing.T) {
	rep := synthReport(t)
	for i, pass := range []bool{true, true, true, true, false, true, false, true, false, false, false} {
		if rep.Sat[i].Pass != pass {
			t.Fatalf("step %d %s %.0f: pass %v (%s), want %v", i, rep.Sat[i].Kind, rep.Sat[i].Rate, rep.Sat[i].Pass, rep.Sat[i].Reason, pass)
		}
	}
	for k, want := range map[kind]satOutcome{
		kindTailsift: {Rate: 6000, FirstFail: 7500, FailReason: "accepted 99.50% of offered < 99.9%", StepsTried: 2},
		kindContrib:  {Rate: 6000, FirstFail: 7500, FailReason: "p99 added latency 1200 ms > 1000 ms", StepsTried: 2},
		kindFastpath: {Rate: 6000, LoadgenCap: true, StepsTried: 2},
	} {
		if got := rep.strictSat(k); got != want {
			t.Errorf("%s strict: got %+v, want %+v", k, got, want)
		}
	}
	md := rep.markdown()
	containsAll(t, md, "report",
		"- **Strict** (the issue's rule): accepted = offered (the loadgen's accepted spans ≥ 99.9 % of offered), no trace decided early for lack of room, and p99 added decision latency ≤ 1000 ms for every collector",
		"- **tailsift**: relaxed **9400 spans/s** (next step 11800 failed: p99 added latency 1400 ms > 1000 ms); strict **6000 spans/s** (next step 7500 failed: accepted 99.50% of offered < 99.9%)\n",
		"- **contrib**: relaxed **≥ 7500 spans/s** (the load generator could not offer more on CPU 1; not saturated); strict **6000 spans/s** (next step 7500 failed: p99 added latency 1200 ms > 1000 ms)\n",
		"- **fastpath**: relaxed and strict **≥ 6000 spans/s** (the load generator could not offer more on CPU 1; not saturated)\n",
		"| true |  | false: accepted 99.50% of offered < 99.9% |\n",
		"| false | p99 added latency 2500 ms > 2000 ms | false |\n",
		"| true |  | false: p99 added latency 1200 ms > 1000 ms |\n",
	)
}

func TestSVGSeries(t *testing.T) {
	rep := synthReport(t)
	title := func(svg string) string {
		i := strings.Index(svg, `font-weight="bold">`)
		j := strings.Index(svg[i:], "</text>")
		return svg[i+len(`font-weight="bold">`) : i+j]
	}
	series := func(svg string) (out []string) {
		for k, c := range map[kind]string{kindTailsift: "#1f77b4", kindContrib: "#d62728", kindFastpath: "#2ca02c"} {
			// one polyline per panel
			if n := strings.Count(svg, `fill="none" stroke="`+c+`"`); n > 0 {
				out = append(out, fmt.Sprintf("%s×%d", k, n))
			}
		}
		slices.Sort(out)
		return out
	}
	svg := rep.svg()
	if got := title(svg); got != "tailsift and fastpath vs contrib tail_sampling v0.161.0: one collector pinned to one core" {
		t.Errorf("title %q", got)
	}
	if got := series(svg); !slices.Equal(got, []string{"contrib×2", "fastpath×2", "tailsift×2"}) {
		t.Errorf("series %v", got)
	}
	if !strings.Contains(svg, ">contrib (saturation: ≥ 7.5k spans/s)</text>") {
		t.Errorf("no contrib legend:\n%s", svg)
	}
	// A run without contrib's ladder: no contrib in the title or the plot.
	var sat []*satStep
	for _, s := range rep.Sat {
		if s.Kind != kindContrib {
			sat = append(sat, s)
		}
	}
	rep.Sat = sat
	delete(rep.SatRate, kindContrib)
	svg = rep.svg()
	if got := title(svg); got != "tailsift and fastpath: one collector pinned to one core" {
		t.Errorf("title without contrib %q", got)
	}
	if got := series(svg); !slices.Equal(got, []string{"fastpath×2", "tailsift×2"}) || strings.Contains(svg, "contrib (saturation") {
		t.Errorf("series without contrib %v", got)
	}
	for _, c := range []struct {
		kinds []kind
		want  string
	}{
		{[]kind{kindTailsift}, "tailsift"},
		{[]kind{kindContrib}, "contrib tail_sampling v0.161.0"},
		{[]kind{kindTailsift, kindContrib}, "tailsift vs contrib tail_sampling v0.161.0"},
		{nil, "no saturation steps"},
	} {
		if got := svgTitle(c.kinds); got != c.want {
			t.Errorf("svgTitle(%v) = %q, want %q", c.kinds, got, c.want)
		}
	}
}

func TestSizingSource(t *testing.T) {
	rep := synthReport(t)
	section := func() string {
		var b markdownWriter
		rep.sizing(&b)
		return b.String()
	}
	// contrib passed 2 steps (6000, and 7500 on the retry): no fit, the
	// side-by-side medians for both; tailsift's fit is shown but not used.
	got := section()
	containsAll(t, got, "sizing",
		"Data: this run only (started 2026-11-28 09:00 UTC, mode `full`, tailsift sources sha256 0123456789ab…): the medians of the side-by-side runs (3 tailsift, 3 contrib) at 10000 spans/s; no saturation fit because contrib has 2 passing saturation steps, 3 needed.\n",
		"| tailsift | 9.00 | 0.000 | 40 | 1600 | 4.00 | 9.00 | 1600 | 1.00, 1.00 (3 steps; not used) | 9400 spans/s |\n",
		"| contrib | 20.00 | 0.000 | 60 | 5000 | 5.00 | 20.00 | 5000 | — | 7500 spans/s |\n",
		"| 100k | tailsift | 2 | 77778 |",
	)
	// A third passing contrib step: both fitted over this run's steps.
	r := &runResult{Kind: kindContrib, Label: "sat0", Rate: 5000, WindowAcceptedRate: 5000, P99AddedMs: new(float64),
		CPUMicrosPerSpan: 20, CPUUtil: 0.1, RSSMeanMB: 100, BufferedSpansMean: 25000,
		Loadgen: &loadgenSummary{OfferedSpans: 1000, AcceptedSpans: 1000}}
	rep.Sat = append([]*satStep{judge(r)}, rep.Sat...)
	got = section()
	containsAll(t, got, "fitted sizing",
		"Data: this run only (started 2026-11-28 09:00 UTC, mode `full`, tailsift sources sha256 0123456789ab…): the fit over tailsift's passing saturation steps at 6000–9400 spans/s offered (3 steps) and contrib's at 5000–7500 (3 steps); W from the side-by-side runs (3 tailsift, 3 contrib) at 10000 spans/s.\n",
		// RSS = 50 MB + S/500 MB in every step: b = 2²⁰/500 B.
		"| tailsift | 9.00 | 0.000 | 50 | 2097 | 4.00 | 9.00 | 1600 | 1.00, 1.00 (3 steps) | 9400 spans/s |\n",
		"| contrib | 20.00 | 0.000 | 50 | 2097 | 5.00 | 20.00 | 5000 | 1.00, 1.00 (3 steps) | 7500 spans/s |\n",
	)
	// Without contrib's ladder the reason says so.
	var sat []*satStep
	for _, s := range rep.Sat {
		if s.Kind != kindContrib {
			sat = append(sat, s)
		}
	}
	rep.Sat = sat
	if got := section(); !strings.Contains(got, "no saturation fit because this run has no contrib saturation ladder.\n") {
		t.Errorf("sizing without contrib's ladder:\n%s", got)
	}
	// Without side-by-side runs: said, not silently left out.
	rep.Side = nil
	if got := section(); got != "## Sizing\n\nNot computed: it needs side-by-side runs of both tailsift and contrib that measured CPU, buffered spans and RSS; this run has 0 of tailsift.\n\n" {
		t.Errorf("sizing without side-by-side runs: %q", got)
	}
}

// TestMarkdownGolden renders every stored results JSON again and compares
// it with the markdown stored next to it, so that a change to the report
// code that changes its output shows here. When the output is meant to
// change, re-render the stored reports with -replot.
func TestMarkdownGolden(t *testing.T) {
	// Written by an older report format (before the per-class sink table).
	stale := map[string]bool{"e2e-2026-11-27.json": true}
	files, err := filepath.Glob(filepath.Join("..", "..", "results", "e2e-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no stored results: %v", err)
	}
	compared := 0
	for _, path := range files {
		if stale[filepath.Base(path)] {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".md")
			if err != nil {
				t.Fatal(err)
			}
			rep, err := loadReport(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.markdown(); got != string(want) {
				t.Errorf("rendering %s differs from the stored markdown", path)
			}
		})
		compared++
	}
	if compared < 5 {
		t.Errorf("compared %d stored reports, want at least 5", compared)
	}
}

// containsAll checks that text, the named part of a report, holds every one
// of lines.
func containsAll(t *testing.T, text, name string, lines ...string) {
	t.Helper()
	for _, line := range lines {
		if !strings.Contains(text, line) {
			t.Errorf("%s lacks %q:\n%s", name, line, text)
		}
	}
}

// TestFastKeptRowNamesTheConfiguredFraction: the side table's kept-fraction
// row gives the fraction the runs were configured with (-fast-percent ÷
// 100), 0.05 for reports written before the flag.
func TestFastKeptRowNamesTheConfiguredFraction(t *testing.T) {
	rep, err := loadReport(filepath.Join("..", "..", "results", "e2e-2026-12-05-quiet7-sdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Opts.FastPercent != 0 {
		t.Fatalf("a report from before -fast-percent has FastPercent %g", rep.Opts.FastPercent)
	}
	if md := rep.markdown(); !strings.Contains(md, "| fast kept fraction (configured 0.05) |") {
		t.Error("the default fraction, 0.05, is not named")
	}
	rep.Opts.FastPercent = 0.01
	md := rep.markdown()
	if !strings.Contains(md, "| fast kept fraction (configured 0.0001) |") || strings.Contains(md, "configured 0.05") {
		t.Error("-fast-percent 0.01 is not named as 0.0001")
	}
}
