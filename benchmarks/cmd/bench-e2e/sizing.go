package main

import (
	"fmt"
	"math"
	"strings"
)

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
func (rep *report) sizing(md *markdownWriter) {
	const util = 0.7
	rates := []float64{100e3, 1e6, 10e6}
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
		c := rep.med(k, func(r *runResult) (float64, bool) { return positive(r.CPUMicrosPerSpan) })
		h := rep.med(k, func(r *runResult) (float64, bool) { return positive(r.MeanHoldS) })
		by := rep.med(k, func(r *runResult) (float64, bool) { return positive(r.BytesPerBufSpanRSS) })
		id := rep.med(k, func(r *runResult) (float64, bool) { return positive(r.RSSIdleMB) })
		if c.n == 0 || h.n == 0 || by.n == 0 {
			md.printf("## Sizing\n\nNot computed: it needs side-by-side runs of both tailsift and contrib that measured CPU, buffered spans and RSS; this run has %d of %s.\n\n", min(c.n, h.n, by.n), k)
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
			m.alpha, m.beta, m.mem0, m.bytes = 0, m.sideC*1e-6, rep.med(k, func(r *runResult) (float64, bool) { return positive(r.RSSIdleMB) }).med*mb, m.sideB
		}
	}
	md.printf("## Sizing\n\n")
	// Where the figures come from: this report's own runs, nothing else.
	ts, ct := ms[kindTailsift], ms[kindContrib]
	md.printf("Data: this run only (started %s, mode `%s`, tailsift sources sha256 %s): ", rep.Started.UTC().Format("2006-01-02 15:04 MST"), rep.Opts.Mode, rep.SourceSum)
	if fitted {
		md.printf("the fit over tailsift's passing saturation steps at %.0f–%.0f spans/s offered (%d steps) and contrib's at %.0f–%.0f (%d steps); W from the side-by-side runs (%d tailsift, %d contrib) at %.0f spans/s.\n\n",
			ts.lo, ts.hi, ts.cpuFit.n, ct.lo, ct.hi, ct.cpuFit.n, ts.sideN, ct.sideN, rep.Opts.Rate)
	} else {
		var why []string
		for _, k := range pair {
			if ms[k].noFit != "" {
				why = append(why, ms[k].noFit)
			}
		}
		md.printf("the medians of the side-by-side runs (%d tailsift, %d contrib) at %.0f spans/s; no saturation fit because %s.\n\n", ts.sideN, ct.sideN, rep.Opts.Rate, strings.Join(why, " and "))
	}
	if fitted {
		md.printf("Fitted over each collector's passing saturation steps (one collector per core, as measured): CPU cores used against accepted rate, `cores = α + β·R`, and mean RSS against buffered spans, `RSS = a + b·S`. β is the marginal CPU per span, b the marginal bytes per buffered span (it includes the Go GC's headroom and whatever else grows with the rate, e.g. receive buffers). W is the mean time a span is buffered, from the side-by-side runs (buffered spans ÷ accepted rate).\n\n")
		md.printf("    instances(R) = ⌈ R · β / (%.0f %% − α) ⌉        one core each, run at most %.0f %% busy\n", util*100, util*100)
		md.printf("    memory(R)    = instances(R) · a + R · W · b\n\n")
	} else {
		md.printf("From the side-by-side medians (no saturation fit): β = c = collector CPU µs per span, b = B = (RSS − idle RSS) per buffered span, a = M₀ = idle RSS, W = buffered spans ÷ accepted rate.\n\n")
		md.printf("    instances(R) = ⌈ R · c / (%.0f %% · 10⁶) ⌉      one core each, run at most %.0f %% busy\n", util*100, util*100)
		md.printf("    memory(R)    = instances(R) · M₀ + R · W · B\n\n")
	}
	w := rep.Opts.decisionWait()
	md.printf("The decision wait is tailsift `completion.quiet: %v` / contrib `decision_wait_after_root_received: %v` (W as measured); the last column assumes every span waits the full 30 s (`max_wait` / `decision_wait`, e.g. root spans that never arrive). Not included: the load-balancing tier in front (trace-ID routing), network, exporter retries, GOMEMLIMIT tuning.\n\n", w, w)
	md.printf("| collector | β (µs/span) | α (cores) | a (MB) | b (B / buffered span) | W (s) | side-by-side c (µs/span) | side-by-side B | fit R² (CPU, RSS) | measured saturation (relaxed) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
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
		md.printf("| %s | %.2f | %.3f | %.0f | %.0f | %.2f | %.2f | %.0f | %s | %s |\n", k, m.beta*1e6, m.alpha, m.mem0/mb, m.bytes, m.hold, m.sideC, m.sideB, r2, sat)
	}
	md.printf("\n| rate (spans/s) | collector | instances (cores) | spans/s per instance | memory at W | memory if W = 30 s |\n|---:|---|---:|---:|---:|---:|\n")
	for _, R := range rates {
		for _, k := range pair {
			m := ms[k]
			per := (util - m.alpha) / m.beta
			if per <= 0 {
				md.printf("| %s | %s | — | — | — | — |\n", human(R), k)
				continue
			}
			n := math.Ceil(R / per)
			md.printf("| %s | %s | %.0f | %.0f | %s | %s |\n", human(R), k, n, per, gib(n*m.mem0+R*m.hold*m.bytes), gib(n*m.mem0+R*30*m.bytes))
		}
	}
	md.printf("\n")
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
