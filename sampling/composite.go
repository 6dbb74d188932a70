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
	// budget bites. Consistent thins each sub-policy's set of randomness
	// values by a limiter's probability, set from the demand as
	// rate_limiting does (one for each sub-policy's allocation, one for the
	// total), and keeps a trace with the measure of those sets placed as
	// apart as they allow (composite_offers.go): the allocations hold on
	// average and kept traces count right.
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
	salts := len(b.salts)
	ps, err := buildSubPolicies(b, "composite_sub_policy", c.SubPolicies, compositeSubTypes)
	if err != nil {
		return nil, err
	}
	if n := distinctSalts(b.salts[salts:]); c.Mode != LimitStrict && n >= maxOfferBases {
		return nil, fmt.Errorf("composite_sub_policy: at most %d distinct hash_salt values in mode consistent, got %d", maxOfferBases-1, n)
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
		var o compositeOffer
		if p.offer(t, false, &o); o.p > 0 {
			p.chargeOffer(t, &o)
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
// threshold there would keep none of them. Instead every sub-policy states
// the set of randomness values with which it keeps t, kept or not, each
// allocation's share thins its sub-policy's set, and t is kept when its
// randomness falls in K, those thinned sets placed as apart as they allow
// (composite_offers.go), thinned again by the total's share. K's measure P
// and the shares' probabilities come from t's deterministic features and
// the traces before it, not from t's randomness, so 1/(P·p_t) counts t
// without bias. A kept trace charges each allocation its part of K and the
// total its cost. A refusal carries its threshold (for the engine's union
// of the policies' sets) when K is one threshold's set.
func (p *composite) evaluateShare(t *Trace) Decision {
	d, _ := p.decideShare(t, nil)
	return d
}

// decideShare is evaluateShare; with sets (the engine's union, see
// composite_union.go), K is stated as its sets on the trace's randomness
// values, written there, their number returned (-1: the decision states
// its set, as evaluateShare's).
func (p *composite) decideShare(t *Trace, sets *[unionSets]Decision) (Decision, int) {
	var o compositeOffer
	p.offer(t, !t.redo, &o)
	if o.p <= 0 {
		return Decision{}, -1
	}
	// The total's demand is the cost K covers.
	pt := p.total.probability(t.Now, float64(t.SpanCount)*o.p, !t.redo)
	d, n := Decision{}, -1
	if sets != nil && !o.oneSet() {
		d, n = o.sets(t, pt, p.salts, sets)
	}
	if n < 0 {
		d = o.decide(t, pt, p.salts)
	}
	if d.Verdict != Sampled {
		return d, n
	}
	switch {
	case !t.redo:
		p.chargeOffer(t, &o)
		t.charged |= p.bit
	case t.charged&p.bit == 0:
		t.pending |= p.bit
	}
	return d, n
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
