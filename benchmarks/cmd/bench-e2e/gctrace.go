package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
)

// gcStats are the collector's GC cycles in part of its log, from the lines
// GODEBUG=gctrace=1 writes to stderr, one per cycle:
//
//	gc 12 @3.456s 2%: 0.011+2.3+0.024 ms clock, 0.011+0.52/1.1/0.30+0.024 ms cpu, 40->41->20 MB, 42 MB goal, 0 MB stacks, 0 MB globals, 1 P
type gcStats struct {
	Cycles  int     `json:"cycles"`
	CPUMs   float64 `json:"cpu_ms"`       // the "ms cpu" terms summed: STW + assist + background + idle marking
	GoalMB  float64 `json:"goal_mb_mean"` // mean heap goal of the cycles
	IdleMs  float64 `json:"idle_mark_ms"` // of CPUMs: marking on an otherwise idle P
	AssistM float64 `json:"assist_ms"`    // of CPUMs: marking by allocating goroutines
}

// parseGCTrace sums the gctrace lines of text; other lines are skipped, and
// so is a line cut at either end of text.
func parseGCTrace(text []byte) gcStats {
	var st gcStats
	var goal float64
	for line := range bytes.Lines(text) {
		s := strings.TrimSpace(string(line))
		if !strings.HasPrefix(s, "gc ") || !strings.Contains(s, " ms cpu,") {
			continue
		}
		_, rest, ok := strings.Cut(s, " ms clock, ")
		if !ok {
			continue
		}
		cpu, rest, ok := strings.Cut(rest, " ms cpu, ")
		if !ok {
			continue
		}
		terms, ok := cpuTerms(cpu)
		if !ok {
			continue
		}
		st.Cycles++
		for _, v := range terms {
			st.CPUMs += v
		}
		st.AssistM += terms[1]
		st.IdleMs += terms[3]
		for _, f := range strings.Split(rest, ", ") {
			if g, ok := strings.CutSuffix(f, " MB goal"); ok {
				v, _ := strconv.ParseFloat(g, 64)
				goal += v
			}
		}
	}
	if st.Cycles > 0 {
		st.GoalMB = goal / float64(st.Cycles)
	}
	return st
}

// cpuTerms splits "a+b/c/d+e" (STW sweep termination, assist, background,
// idle marking, STW mark termination) into its five values.
func cpuTerms(s string) ([5]float64, bool) {
	var out [5]float64
	p := strings.Split(s, "+")
	if len(p) != 3 {
		return out, false
	}
	m := strings.Split(p[1], "/")
	if len(m) != 3 {
		return out, false
	}
	for i, f := range []string{p[0], m[0], m[1], m[2], p[2]} {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return out, false
		}
		out[i] = v
	}
	return out, true
}

// logSize is the current size of a log file (0 when it cannot be read).
func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// gcBetween parses the gctrace lines written to path between two sizes of
// the file (the two ends of the window).
func gcBetween(path string, from, to int64) gcStats {
	if to <= from {
		return gcStats{}
	}
	f, err := os.Open(path)
	if err != nil {
		return gcStats{}
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, to-from)
	if _, err := f.ReadAt(b, from); err != nil && err != io.EOF {
		return gcStats{}
	}
	return parseGCTrace(b)
}
