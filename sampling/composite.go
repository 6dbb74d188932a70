package sampling

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// CompositeConfig combines sub-policies under a spans-per-second budget, as
// contrib's composite policy does: the first sub-policy (in
// composite_sub_policy order) that keeps a trace decides, and keeps it only
// if that sub-policy's spans this second, with the trace's, stay within both
// its own allocation and MaxTotalSpansPerSecond.
type CompositeConfig struct {
	// MaxTotalSpansPerSecond is the budget shared out to the sub-policies.
	MaxTotalSpansPerSecond int64 `mapstructure:"max_total_spans_per_second"`
	// PolicyOrder is accepted for compatibility and, as in contrib, not
	// used: sub-policies are evaluated in composite_sub_policy order.
	PolicyOrder []string `mapstructure:"policy_order"`
	// SubPolicies are the composed policies.
	SubPolicies []PolicyConfig `mapstructure:"composite_sub_policy"`
	// RateAllocation gives sub-policies, by name, a percentage of
	// MaxTotalSpansPerSecond. A sub-policy without one (or with 0 %) gets
	// MaxTotalSpansPerSecond divided by the number of sub-policies.
	RateAllocation []RateAllocationConfig `mapstructure:"rate_allocation"`
}

// RateAllocationConfig is one entry of composite's rate_allocation.
type RateAllocationConfig struct {
	// Policy is the name of a composite_sub_policy.
	Policy string `mapstructure:"policy"`
	// Percent is its share of max_total_spans_per_second, in [0, 100].
	Percent int64 `mapstructure:"percent"`
}

// Validate implements the config validator.
func (c *CompositeConfig) Validate() error {
	if c.MaxTotalSpansPerSecond <= 0 {
		return errors.New("max_total_spans_per_second: must be positive")
	}
	if err := validateSubPolicies("composite_sub_policy", c.SubPolicies, compositeSubTypes); err != nil {
		return err
	}
	for i, a := range c.RateAllocation {
		if !slices.ContainsFunc(c.SubPolicies, func(s PolicyConfig) bool { return s.Name == a.Policy }) {
			return fmt.Errorf("rate_allocation::%d::policy: %q is not the name of a composite_sub_policy", i, a.Policy)
		}
		if a.Percent < 0 || a.Percent > 100 {
			return fmt.Errorf("rate_allocation::%d::percent: must be in [0, 100], got %d", i, a.Percent)
		}
	}
	return nil
}

// allocations returns each sub-policy's spans per second, as contrib's
// getRateAllocationMap computes them (float shares, truncated).
func (c *CompositeConfig) allocations() []int64 {
	total := float64(c.MaxTotalSpansPerSecond)
	fallback := total / float64(len(c.SubPolicies))
	percent := make(map[string]int64, len(c.RateAllocation))
	for _, a := range c.RateAllocation {
		percent[a.Policy] = a.Percent
	}
	out := make([]int64, len(c.SubPolicies))
	for i := range c.SubPolicies {
		share := fallback
		if p, ok := percent[c.SubPolicies[i].Name]; ok && p > 0 {
			share = float64(p) / 100 * total
		}
		out[i] = int64(share)
	}
	return out
}

type compositeSub struct {
	policy    evaluator
	allocated int64
	sampled   int64 // spans kept this second; guarded by composite.mu
}

type composite struct {
	maxTotal int64

	mu     sync.Mutex
	second int64 // the Unix second the counters are for
	subs   []compositeSub
}

func newComposite(settings any, b *builder) (evaluator, error) {
	c := settings.(*CompositeConfig)
	if c.MaxTotalSpansPerSecond <= 0 {
		return nil, errors.New("max_total_spans_per_second: must be positive")
	}
	ps, err := buildSubPolicies(b, "composite_sub_policy", c.SubPolicies, compositeSubTypes)
	if err != nil {
		return nil, err
	}
	alloc := c.allocations()
	p := &composite{maxTotal: c.MaxTotalSpansPerSecond, subs: make([]compositeSub, len(ps))}
	for i := range ps {
		p.subs[i] = compositeSub{policy: ps[i], allocated: alloc[i]}
	}
	return p, nil
}

// Evaluate is contrib's Composite.Evaluate, with the second taken from t.Now.
// The first sub-policy answering Sampled or InvertSampled decides: the trace
// is kept if that sub-policy's count of spans kept this second plus the
// trace's stays within its allocation and within max_total_spans_per_second
// (the count then grows), else it is not kept and no later sub-policy is
// asked. A kept trace carries that sub-policy's threshold.
func (p *composite) Evaluate(t *Trace) Decision {
	sec := t.Now / int64(time.Second)
	if t.Now < 0 && t.Now%int64(time.Second) != 0 {
		sec-- // floor, as time.Unix does
	}
	for i := range p.subs {
		s := &p.subs[i]
		d := s.policy.Evaluate(t)
		if d.Verdict != Sampled && d.Verdict != InvertSampled {
			continue
		}
		p.mu.Lock()
		// A new second resets the counters. Shards decide concurrently, so
		// a decision stamped in the second before the current one counts in
		// the current one rather than resetting it; a clock stepped back
		// further resets, as in contrib.
		if sec > p.second || sec < p.second-1 {
			p.second = sec
			for j := range p.subs {
				p.subs[j].sampled = 0
			}
		}
		n := s.sampled + int64(t.SpanCount)
		keep := n <= s.allocated && n <= p.maxTotal
		if keep {
			s.sampled = n
		}
		p.mu.Unlock()
		if keep {
			return sampledAt(d.Threshold)
		}
		return Decision{}
	}
	return Decision{}
}
