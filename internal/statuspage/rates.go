package statuspage

import (
	"sync"
	"time"

	"github.com/tailsift/tailsift/sampling"
)

// Rates are measured between the current counts and a sample taken at
// least rateWindow earlier (the newest such one); samples are taken at most
// once per rateStep, when a snapshot is asked for. So the rates need no
// goroutine, and several pages open at once share the samples.
const (
	rateStep   = time.Second
	rateWindow = 5 * time.Second
)

type count struct{ traces, spans int64 }

type rateSample struct {
	at     time.Time
	counts map[decidedKey]count
}

type rates struct {
	mu      sync.Mutex
	samples []rateSample // oldest first
}

// update records counts at now and returns the sample to measure rates
// against and the time since it; a zero window when there is none yet.
func (r *rates) update(now time.Time, counts map[decidedKey]count) (map[decidedKey]count, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.samples); n == 0 || now.Sub(r.samples[n-1].at) >= rateStep {
		r.samples = append(r.samples, rateSample{at: now, counts: counts})
	}
	// Keep one sample at least rateWindow old, the newest such.
	for len(r.samples) > 1 && now.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
	base := r.samples[0]
	window := now.Sub(base.at)
	if window <= 0 {
		return nil, 0
	}
	return base.counts, window
}

// budgetStatus is the budget with each class's measured kept rate: the
// keep decisions of its policies, in the budget's unit.
func budgetStatus(b sampling.BudgetStatus, policies []sampling.PolicyStatus, counts, base map[decidedKey]count, window time.Duration) *Budget {
	out := &Budget{Rate: b.Rate, Unit: b.Unit}
	for _, c := range b.Classes {
		cl := Class{Name: c.Name, Probability: c.Probability, Demand: c.Demand, Allocated: c.Demand * c.Probability}
		var kept int64
		for _, p := range policies {
			if p.Class != c.Name {
				continue
			}
			cl.Policies = append(cl.Policies, p.Name)
			k := decidedKey{p.Name, true}
			if b.Unit == "spans" {
				kept += counts[k].spans - base[k].spans
			} else {
				kept += counts[k].traces - base[k].traces
			}
		}
		if window > 0 {
			cl.KeptPerSecond = float64(kept) / window.Seconds()
		}
		out.Classes = append(out.Classes, cl)
	}
	return out
}
