package main

import (
	"math"
	"time"
)

// cpuPoint is the collector's CPU seconds and accepted spans at one scrape
// of the counted window.
type cpuPoint struct {
	t        time.Time
	cpu      float64
	accepted float64
}

// windowHalves compares the two halves of the counted window: a collector
// still filling its buffers (warm-up shorter than the time a span is held)
// or a GC cycle landing in one half shows as a ratio away from 1.
type windowHalves struct {
	FirstMicrosPerSpan  float64 `json:"first_us_per_span"`
	SecondMicrosPerSpan float64 `json:"second_us_per_span"`
	// Segments: µs/span between consecutive scrapes (-scrape-every apart, 2 s by default).
	Segments []float64 `json:"segments_us_per_span,omitempty"`
}

// Ratio is the second half's CPU per span over the first's (NaN if either
// is missing).
func (h *windowHalves) Ratio() float64 {
	if h == nil || h.FirstMicrosPerSpan <= 0 || h.SecondMicrosPerSpan <= 0 {
		return math.NaN()
	}
	return h.SecondMicrosPerSpan / h.FirstMicrosPerSpan
}

// halves cuts the window at the scrape nearest its middle; nil with fewer
// than three points.
func halves(p []cpuPoint) *windowHalves {
	if len(p) < 3 {
		return nil
	}
	first, last := p[0], p[len(p)-1]
	mid := first.t.Add(last.t.Sub(first.t) / 2)
	m := 1
	for i := 1; i < len(p)-1; i++ {
		if absDur(p[i].t.Sub(mid)) < absDur(p[m].t.Sub(mid)) {
			m = i
		}
	}
	h := &windowHalves{FirstMicrosPerSpan: perSpan(first, p[m]), SecondMicrosPerSpan: perSpan(p[m], last)}
	for i := 1; i < len(p); i++ {
		h.Segments = append(h.Segments, perSpan(p[i-1], p[i]))
	}
	return h
}

// perSpan is the CPU µs per accepted span between two points (0 when no
// span was accepted).
func perSpan(a, b cpuPoint) float64 {
	if n := b.accepted - a.accepted; n > 0 {
		return (b.cpu - a.cpu) * 1e6 / n
	}
	return 0
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
