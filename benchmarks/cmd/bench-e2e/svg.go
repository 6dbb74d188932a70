package main

import (
	"fmt"
	"math"
	"strings"
)

// svg draws CPU µs/span and mean RSS against the offered rate for every
// collector with saturation steps (its title names only those): two panels, one point per step,
// filled when the step passed, hollow when it failed; a dashed vertical
// line at each collector's saturation rate.
func (rep *report) svg() string {
	const (
		W, H        = 820, 670
		left, right = 80, 30
		panelH      = 230
		top1, top2  = 85, 390
	)
	colors := map[kind]string{kindTailsift: "#1f77b4", kindContrib: "#d62728", kindFastpath: "#2ca02c"}
	type pt struct {
		x, cpu, rss float64
		pass        bool
	}
	pts := map[kind][]pt{}
	var xmax, cmax, rmax float64
	for _, s := range rep.Sat {
		p := pt{s.Rate / 1000, s.CPUMicrosPerSpan, s.RSSMeanMB, s.Pass}
		pts[s.Kind] = append(pts[s.Kind], p)
		xmax, cmax, rmax = math.Max(xmax, p.x), math.Max(cmax, p.cpu), math.Max(rmax, p.rss)
	}
	xmax = axisMax(xmax * 1.05)
	cmax = axisMax(cmax * 1.1)
	rmax = axisMax(rmax * 1.1)
	pw := float64(W - left - right)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	var present []kind // the series drawn, in legend order
	for _, k := range samplers {
		if len(pts[k]) > 0 {
			present = append(present, k)
		}
	}
	w(`<text x="%d" y="24" font-size="15" font-weight="bold">%s: one collector pinned to one core</text>`+"\n", left, xmlEscape(svgTitle(present)))
	w(`<text x="%d" y="42" fill="#555">saturation steps of bench-e2e %s; filled = passed, hollow = failed (relaxed rule); dashed = saturation rate</text>`+"\n",
		left, rep.Started.UTC().Format("2006-01-02"))
	xpos := func(x float64) float64 { return float64(left) + x/xmax*pw }
	panel := func(top int, ymax float64, title string, y func(pt) float64) {
		ypos := func(v float64) float64 { return float64(top+panelH) - v/ymax*panelH }
		w(`<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, top-8, title)
		for _, t := range ticks(ymax) {
			w(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, ypos(t), W-right, ypos(t))
			w(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, ypos(t)+4, tickLabel(t))
		}
		for _, t := range ticks(xmax) {
			w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", xpos(t), top, xpos(t), top+panelH)
			w(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xpos(t), top+panelH+16, tickLabel(t))
		}
		w(`<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, pw, panelH)
		w(`<text x="%.1f" y="%d" text-anchor="middle">offered rate (thousand spans/s)</text>`+"\n", float64(left)+pw/2, top+panelH+34)
		for _, k := range samplers {
			ps := pts[k]
			if len(ps) == 0 {
				continue
			}
			var path []string
			for _, p := range ps {
				path = append(path, fmt.Sprintf("%.1f,%.1f", xpos(p.x), ypos(y(p))))
			}
			w(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", strings.Join(path, " "), colors[k])
			for _, p := range ps {
				fill := colors[k]
				if !p.pass {
					fill = "white"
				}
				w(`<circle cx="%.1f" cy="%.1f" r="4.5" fill="%s" stroke="%s" stroke-width="1.5"><title>%s %.0f spans/s: %.2f µs/span, %.0f MB</title></circle>`+"\n",
					xpos(p.x), ypos(y(p)), fill, colors[k], k, p.x*1000, p.cpu, p.rss)
			}
			if s := rep.SatRate[k].Rate; s > 0 {
				w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="5,4"/>`+"\n", xpos(s/1000), top, xpos(s/1000), top+panelH, colors[k])
			}
		}
	}
	panel(top1, cmax, "collector CPU µs per accepted span", func(p pt) float64 { return p.cpu })
	panel(top2, rmax, "collector RSS, mean over the window (MB)", func(p pt) float64 { return p.rss })
	// Legend.
	lx := W - right - 230
	for i, k := range present {
		label := string(k)
		if rep.SatRate[k].StepsTried > 0 {
			label += " (saturation: " + satLabel(rep.SatRate[k]) + ")"
		}
		y := top1 + 18 + i*18
		w(`<circle cx="%d" cy="%d" r="4.5" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, y, colors[k], lx+10, y+4, xmlEscape(label))
	}
	w("</svg>\n")
	return b.String()
}

// svgTitle names the series drawn: "tailsift vs contrib tail_sampling
// v0.161.0" only when both sides have a ladder.
func svgTitle(present []kind) string {
	var ours []string
	contrib := false
	for _, k := range present {
		if k == kindContrib {
			contrib = true
		} else {
			ours = append(ours, string(k))
		}
	}
	const ct = "contrib tail_sampling v0.161.0"
	switch {
	case len(ours) > 0 && contrib:
		return strings.Join(ours, " and ") + " vs " + ct
	case contrib:
		return ct
	case len(ours) > 0:
		return strings.Join(ours, " and ")
	}
	return "no saturation steps"
}

func satLabel(s satOutcome) string {
	if s.Rate == 0 {
		return "below the first step"
	}
	if s.FirstFail == 0 {
		return fmt.Sprintf("≥ %.1fk spans/s", s.Rate/1000)
	}
	return fmt.Sprintf("%.1fk spans/s", s.Rate/1000)
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 × 10^k.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// axisMax rounds v up to a multiple of a fifth of niceCeil(v)'s decade
// step, so the axis ends close to the data (e.g. 120 rather than 200).
func axisMax(v float64) float64 {
	step := niceCeil(v / 5)
	return math.Ceil(v/step) * step
}

// ticks returns 4-6 round tick values from 0 to max.
func ticks(max float64) []float64 {
	step := niceCeil(max / 5)
	var out []float64
	for t := 0.0; t <= max*1.0001; t += step {
		out = append(out, t)
	}
	return out
}

func tickLabel(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
