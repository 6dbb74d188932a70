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
	// Mode is consistent (the default) or strict. Strict is contrib's
	// per-second counts: a trace over them is not kept, and those kept carry
	// their sub-policy's threshold only, so counts come out low once the
	// budget bites. Consistent keeps a trace with the sub-policy's
	// probability times a limiter's, set from the demand as rate_limiting
	// does (one for each sub-policy's allocation, one for the total): the
	// allocations hold on average and kept traces count right.
	Mode LimitMode `mapstructure:"mode"`
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
	if err := c.Mode.validate(); err != nil {
		return err
	}
	if err := validateSubPolicies("composite_sub_policy", c.SubPolicies, compositeSubTypes); err != nil {
		return err
	}
	if c.Mode != LimitStrict && len(c.SubPolicies) > maxShareSubs {
		return fmt.Errorf("composite_sub_policy: at most %d sub-policies in mode consistent, got %d", maxShareSubs, len(c.SubPolicies))
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
	sampled   int64      // spans kept this second; guarded by composite.mu
	share     *rateShare // consistent mode
}

type composite struct {
	maxTotal int64
	bit      uint64 // charger bit
	// consistent mode: the total's share, and the engine's salts, for
	// the randomness a sub-policy decided on.
	total *rateShare
	salts []uint64

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
		if c.Mode != LimitStrict {
			p.subs[i].share = newRateShare(max(alloc[i], 1), max(alloc[i], 1))
		}
	}
	if c.Mode != LimitStrict {
		// The sub-policies' salts are registered by now; later ones are
		// not theirs.
		p.total, p.salts = newRateShare(c.MaxTotalSpansPerSecond, c.MaxTotalSpansPerSecond), b.salts
	}
	p.bit, err = b.charger(p)
	return p, err
}

// Evaluate is contrib's Composite.Evaluate, with the second taken from t.Now.
// The first sub-policy answering Sampled or InvertSampled decides: the trace
// is kept if that sub-policy's count of spans kept this second plus the
// trace's stays within its allocation and within max_total_spans_per_second
// (the count then grows), else it is not kept and no later sub-policy is
// asked. A kept trace carries that sub-policy's threshold.
//
// In Redecide the count does not grow: the trace is kept if an earlier
// decision counted it, or if it would fit now (its count then pending).
func (p *composite) Evaluate(t *Trace) Decision {
	if p.total != nil {
		return p.evaluateShare(t)
	}
	i, d := p.first(t)
	if i < 0 {
		return Decision{}
	}
	switch {
	case !t.redo:
		if !p.count(i, t, false) {
			return Decision{}
		}
		t.charged |= p.bit
	case t.charged&p.bit != 0:
	case p.fits(i, t):
		t.pending |= p.bit
	default:
		return Decision{}
	}
	d.Verdict = Sampled // an InvertSampled sub-policy's too
	return d
}

// charge counts a trace Redecide kept under the sub-policy that decides it
// now, past the limits if need be.
func (p *composite) charge(t *Trace) {
	if p.total != nil {
		var offers [maxShareSubs]float64
		if b, _, _ := p.offers(t, false, &offers); b > 0 {
			p.chargeShares(t, &offers)
		}
		return
	}
	if i, _ := p.first(t); i >= 0 {
		p.count(i, t, true)
	}
}

// maxShareSubs is the number of sub-policies a composite holds in
// consistent mode: their offers are kept on the stack.
const maxShareSubs = 32

// evaluateShare is Evaluate in consistent mode. First-match does not mix
// with thresholds: the traces reaching a later sub-policy are those the
// earlier ones refused, on randomness below their thresholds, so a
// threshold there would keep none of them. Instead every sub-policy is
// evaluated; each one i that samples t with conditional probability q_i
// offers q_i·p_i, p_i being its allocation's share probability (its
// demand is what it samples), and the offers add up to b (at most 1), so
// that each allocation is spent as in contrib. The total's share then
// thins b: t is kept if the randomness of the largest offer's sub-policy
// passes the threshold of b·p_t. Every probability comes from the traces
// before t, so 1/(b·p_t) counts t without bias (when the sub-policies
// sample on the same randomness; see docs/policies/counts.md). A kept
// trace charges each sub-policy's share its offer's part of the cost. A
// refusal carries the threshold, for not.
func (p *composite) evaluateShare(t *Trace) Decision {
	var offers [maxShareSubs]float64
	b, qmax, rv := p.offers(t, !t.redo, &offers)
	if b == 0 {
		return Decision{}
	}
	// The total's demand is the cost the sub-policies offer: this trace,
	// seen with probability about qmax, stands for b/qmax of its cost.
	n := float64(t.SpanCount)
	th := thresholdOf(b, p.total.probability(t.Now, n*b/qmax, !t.redo))
	if !t.Scale(th).ShouldSample(decisionRandomness(t, rv, p.salts)) {
		return Decision{Verdict: NotSampled, Threshold: th, rv: rv}
	}
	switch {
	case !t.redo:
		p.chargeShares(t, &offers)
		t.charged |= p.bit
	case t.charged&p.bit == 0:
		t.pending |= p.bit
	}
	return Decision{Verdict: Sampled, Threshold: th, rv: rv}
}

// offers evaluates the sub-policies on t and fills out with their offers;
// it returns their sum b (at most 1), the largest conditional probability
// of a sub-policy that sampled, and the randomness of the largest offer.
// learn counts t in the demand of the sub-policies that sampled it.
func (p *composite) offers(t *Trace, learn bool, out *[maxShareSubs]float64) (b, qmax float64, rv uint8) {
	n, largest := float64(t.SpanCount), 0.0
	for i := range p.subs {
		d := p.subs[i].policy.Evaluate(t)
		if d.Verdict != Sampled && d.Verdict != InvertSampled {
			continue
		}
		q := d.Threshold.Probability()
		offer := q * p.subs[i].share.probability(t.Now, n, learn)
		out[i], b, qmax = offer, b+offer, max(qmax, q)
		if offer > largest {
			largest, rv = offer, d.rv
		}
	}
	return min(b, 1), qmax, rv
}

// chargeShares charges a kept trace to the total's share and to each
// sub-policy's share in proportion to its offer.
func (p *composite) chargeShares(t *Trace, offers *[maxShareSubs]float64) {
	n := float64(t.SpanCount)
	sum := 0.0
	for i := range p.subs {
		sum += offers[i]
	}
	for i := range p.subs {
		if offers[i] > 0 {
			p.subs[i].share.chargeCost(t.Now, n*offers[i]/sum)
		}
	}
	p.total.chargeCost(t.Now, n)
}

// first returns the first sub-policy that samples t and its decision, or -1.
func (p *composite) first(t *Trace) (int, Decision) {
	for i := range p.subs {
		if d := p.subs[i].policy.Evaluate(t); d.Verdict == Sampled || d.Verdict == InvertSampled {
			return i, d
		}
	}
	return -1, Decision{}
}

// second returns the Unix second of t.Now, floored as time.Unix does.
func second(now int64) int64 {
	sec := now / int64(time.Second)
	if now < 0 && now%int64(time.Second) != 0 {
		sec--
	}
	return sec
}

// count adds t's spans to sub-policy i's count this second if they fit
// within its allocation and max_total_spans_per_second, or whatever with
// force, and reports whether they fit.
func (p *composite) count(i int, t *Trace, force bool) bool {
	sec := second(t.Now)
	p.mu.Lock()
	defer p.mu.Unlock()
	// A new second resets the counters. Shards decide concurrently, so a
	// decision stamped in the second before the current one counts in the
	// current one rather than resetting it; a clock stepped back further
	// resets, as in contrib.
	if sec > p.second || sec < p.second-1 {
		p.second = sec
		for j := range p.subs {
			p.subs[j].sampled = 0
		}
	}
	s := &p.subs[i]
	n := s.sampled + int64(t.SpanCount)
	fit := n <= s.allocated && n <= p.maxTotal
	if fit || force {
		s.sampled = n
	}
	return fit
}

// fits reports whether count would add t's spans to sub-policy i's count,
// changing nothing.
func (p *composite) fits(i int, t *Trace) bool {
	sec := second(t.Now)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := int64(t.SpanCount)
	if sec <= p.second && sec >= p.second-1 {
		n += p.subs[i].sampled
	}
	return n <= p.subs[i].allocated && n <= p.maxTotal
}
