package main

import (
	"fmt"
	"strings"
	"time"
)

// satStep is one step of a saturation ladder and its verdict.
type satStep struct {
	*runResult
	Pass   bool   `json:"pass"`
	Reason string `json:"reason"`
}

// satOutcome is how a collector's saturation ladder ended.
type satOutcome struct {
	Rate       float64 `json:"rate"`        // highest passing rate (0: none)
	FirstFail  float64 `json:"first_fail"`  // lowest failing rate (0: none)
	LoadgenCap bool    `json:"loadgen_cap"` // stopped because the load generator could not offer more
	FailReason string  `json:"fail_reason"`
	StepsTried int     `json:"steps"`
}

// latencyLimit is the p99 added-latency limit of a saturation step: 1 s
// beyond the decision point. The sink measures beyond the decision wait
// (-wait: 2 s on the bench shape) for both; contrib decides on a 1 s ticker,
// 2-3 s after the root span (decision_wait_after_root_received 2s), so its decision point is 1 s
// later and its limit 1 s higher.
func latencyLimit(k kind) float64 {
	if k == kindContrib {
		return 1000 + float64(contribTick/time.Millisecond)
	}
	return 1000
}

// judge applies the saturation criteria to one step.
func judge(r *runResult) *satStep {
	st := &satStep{runResult: r, Pass: true}
	fail := func(format string, args ...any) {
		st.Pass = false
		if st.Reason != "" {
			st.Reason += "; "
		}
		st.Reason += fmt.Sprintf(format, args...)
	}
	lg := r.Loadgen
	switch {
	case lg == nil:
		fail("no loadgen summary")
	case lg.RefusedSpans == 0 && lg.MaxLagMs > 1000:
		// Nothing refused, but the generator could not keep its schedule.
		fail("loadgen could not keep up (max dispatch lag %.0f ms)", lg.MaxLagMs)
		return st
	case float64(lg.AcceptedSpans) < 0.99*float64(lg.OfferedSpans):
		fail("accepted %.2f%% of offered (%d refused)", 100*float64(lg.AcceptedSpans)/float64(lg.OfferedSpans), lg.RefusedSpans)
	}
	// The workload is bursty (about ±30 % per second, traces of up to 5000
	// spans), so this only catches gross shortfalls the loadgen's counters
	// would not show.
	if r.WindowAcceptedRate < 0.85*r.Rate {
		fail("window accepted rate %.0f < 85%% of offered", r.WindowAcceptedRate)
	}
	if r.EarlyMemory > 0 {
		fail("%.0f early decisions for memory", r.EarlyMemory)
	}
	if r.DroppedTooEarly > 0 || r.DroppedTooLarge > 0 {
		fail("%.0f traces dropped too early, %.0f too large", r.DroppedTooEarly, r.DroppedTooLarge)
	}
	if r.Kind == kindContrib && r.TracesOnMemMax >= contribTraces {
		fail("num_traces reached")
	}
	if r.UndecidedAtStop > 0 {
		fail("%.0f traces undecided %v after the load", r.UndecidedAtStop, maxWait+10*time.Second)
	}
	switch {
	case r.P99AddedMs == nil:
		fail("no latency measured")
	case *r.P99AddedMs > latencyLimit(r.Kind):
		fail("p99 added latency %.0f ms > %.0f ms", *r.P99AddedMs, latencyLimit(r.Kind))
	}
	return st
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
