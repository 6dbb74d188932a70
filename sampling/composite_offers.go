package sampling

import (
	"slices"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// The offers of a composite in mode consistent. For a trace t, each
// sub-policy i keeps a set S_i of randomness values, whatever t's own
// randomness: {R ≥ th_i} on the trace's randomness or a salted one, {R' ≥
// th_i} on its reflection (not, through and), every value (a sub-policy
// that samples whatever the randomness: status_code, latency...), or none
// (one that refuses whatever it is). Its measure q_i is its conditional
// probability. Its allocation's share thins it: it offers a_i = q_i·p_i.
//
// The composite keeps t when its randomness falls in a set K of measure P,
// made of a part K_i ⊆ S_i of measure at most a_i for each sub-policy, the
// parts placed as apart as their sets allow, so that each allocation is
// spent as in contrib (P is the sum of the offers while they fit) and the
// sub-policies that keep the same traces keep them once (P is the measure
// of the union of the S_i when no allocation binds: two probabilistic 50
// keep half the traces, as contrib's first-match does). On one randomness
// the sets {R ≥ th_i} are nested: stacked from the top in the order of
// their measures, smallest first, each part fits in its set while the sum
// does (m_k = min(q_k, m_{k-1} + a_k)), and K is {R ≥ th(m)}; the sets on
// the reflection stack from the bottom; the sub-policies that sample
// whatever the randomness fill the gap between them. Sets on different
// randomness (salts) are independent: P = 1 − Π(1 − m_b).
//
// Neither the sets nor the shares' probabilities depend on t's randomness
// (they come from its deterministic features and the traces before it), so
// P does not either, and the total's share thins K to P·p_t: 1/(P·p_t)
// counts t without bias. Each allocation is charged its part of K's measure
// (its part of the cost of a kept trace), its demand is the cost its set
// covers (q_i per span), and the total's demand the cost K covers (P).

// maxOfferBases is the number of distinct randomness values (the trace's
// own, each salt) a composite in mode consistent can combine.
const maxOfferBases = 8

// offerSub is one sub-policy's set for a trace and its part of K.
type offerSub struct {
	q, a  float64 // the set's measure, and the allocation's offer q·p
	part  float64 // its part of K's measure, charged to its allocation
	rv    uint8   // the randomness of the set: salt | reflectRV
	whole bool    // the set is every randomness value
	base  int8    // index in compositeOffer.bases; -1 for none
}

// offerBase is K on one randomness: [top − up, top) and [floor, floor +
// down) in measure (conditional on the head for the trace's own).
type offerBase struct {
	salt     uint8
	up, down float64
	m        float64 // the base's measure of K, min(1, up + down)
}

// compositeOffer is a composite's offer for one trace: kept on the stack,
// so that evaluating allocates nothing.
type compositeOffer struct {
	subs  [maxShareSubs]offerSub
	bases [maxOfferBases]offerBase
	n, nb int     // sub-policies, bases
	p     float64 // P, the measure of K
}

// offer evaluates the sub-policies on t and fills o with their sets, their
// offers and K. learn counts t in the demand of each allocation whose set
// is not empty.
func (p *composite) offer(t *Trace, learn bool, o *compositeOffer) {
	n := float64(t.SpanCount)
	o.n, o.nb = len(p.subs), 0
	home := -1 // the base the whole sets fill: the first one with a set
	for i := range p.subs {
		s := &o.subs[i]
		*s = offerSub{base: -1}
		d := evaluateForSet(p.subs[i].policy, t)
		switch {
		case d.Verdict == InvertSampled || d.Verdict == Sampled && d.Threshold == otelsampling.AlwaysSampleThreshold:
			s.q, s.whole = 1, true
		case d.Verdict != Sampled && d.Verdict != NotSampled:
			continue
		case d.Threshold == otelsampling.AlwaysSampleThreshold || d.rv&unknownRV != 0:
			continue // refused whatever the randomness
		default:
			s.q, s.rv = d.Threshold.Probability(), p.canonical(d.rv)
		}
		if s.q <= 0 {
			continue
		}
		s.a = s.q * p.subs[i].share.probability(t.Now, n*s.q, learn)
		if !s.whole {
			s.base = o.base(s.rv & saltMask)
			if home < 0 {
				home = int(s.base)
			}
		}
	}
	if home < 0 {
		home = int(o.base(0))
	}
	miss := 1.0
	for b := range o.bases[:o.nb] {
		o.fill(b, b == home)
		for i := range o.subs[:o.n] {
			if s := &o.subs[i]; int(s.base) == b || s.whole && b == home {
				s.part *= miss
			}
		}
		miss *= 1 - o.bases[b].m
	}
	o.p = 1 - miss
}

// canonical returns rv with its salt named by the first salted policy of
// the same salt: two sub-policies with one hash_salt sample on one
// randomness.
func (p *composite) canonical(rv uint8) uint8 { return canonicalSalt(p.salts, rv) }

// canonicalSalt is rv with its salt named by the first of salts (the
// engine's, or a prefix of them) with the same state.
func canonicalSalt(salts []uint64, rv uint8) uint8 {
	salt := rv & saltMask
	if salt == 0 || int(salt) > len(salts) {
		return rv
	}
	for i := range salt - 1 {
		if salts[i] == salts[salt-1] {
			return rv&^saltMask | (i + 1)
		}
	}
	return rv
}

// base returns the index of the base of salt, adding it. newComposite
// refuses more salts than fit, so there is room.
func (o *compositeOffer) base(salt uint8) int8 {
	for i := range o.bases[:o.nb] {
		if o.bases[i].salt == salt {
			return int8(i)
		}
	}
	o.bases[o.nb] = offerBase{salt: salt}
	o.nb++
	return int8(o.nb - 1)
}

// fill places the parts on base b: the sets on its randomness stacked from
// the top, those on its reflection from the bottom, and, on the home base,
// the whole sets in between; it sets each sub-policy's part (within the
// base) and the base's spans.
func (o *compositeOffer) fill(b int, home bool) {
	bs := &o.bases[b]
	up := o.stack(b, 0)
	down := o.stack(b, reflectRV)
	if up+down > 1 {
		// The two stacks meet: K is every value; the reflection's parts
		// shrink to what is left.
		o.scale(b, reflectRV, (1-up)/down)
		down = 1 - up
	}
	if home {
		mid := 0.0
		for i := range o.subs[:o.n] {
			if o.subs[i].whole {
				mid += o.subs[i].a
			}
		}
		if mid > 0 {
			f := min(1, (1-up-down)/mid)
			for i := range o.subs[:o.n] {
				if s := &o.subs[i]; s.whole {
					s.part = s.a * f
				}
			}
			up += mid * f
		}
	}
	bs.up, bs.down, bs.m = up, down, min(1, up+down)
}

// stack stacks the parts of the sets on base b with reflection bit dir
// (0 or reflectRV): nested sets, in the order of their measures (ties in
// configuration order), each part as large as its offer while it fits in
// its set. It returns the stack's measure.
func (o *compositeOffer) stack(b int, dir uint8) float64 {
	m, prevQ, prevI := 0.0, -1.0, -1
	for {
		j := -1
		for i := range o.subs[:o.n] {
			s := &o.subs[i]
			if int(s.base) != b || s.rv&reflectRV != dir {
				continue
			}
			if (s.q > prevQ || s.q == prevQ && i > prevI) && (j < 0 || s.q < o.subs[j].q) {
				j = i
			}
		}
		if j < 0 {
			return m
		}
		s := &o.subs[j]
		next := min(s.q, m+s.a)
		s.part, m = next-m, next
		prevQ, prevI = s.q, j
	}
}

// scale multiplies the parts of the sets on base b with reflection bit dir
// by f.
func (o *compositeOffer) scale(b int, dir uint8, f float64) {
	for i := range o.subs[:o.n] {
		if s := &o.subs[i]; int(s.base) == b && s.rv&reflectRV == dir {
			s.part *= f
		}
	}
}

// decide returns the composite's decision on t, K being thinned by the
// total's probability pt: kept when t's randomness falls in the thinned
// K. When K is one threshold's set on one randomness (all the sets on the
// trace's own randomness, or on one salt, or on the reflection), t is
// decided and marked on that randomness, and a refusal carries the
// threshold, as the engine's union needs. Otherwise (sets on independent
// randomness, or on a randomness and its reflection) K is a union of
// intervals: keepSet.derive ranks t among K's values onto R*, uniform on
// [T, 2^56) over K, T being the threshold of P, and t is kept when R*
// passes the threshold of P·pt; the decision is on R* (derivedRV), and a
// refusal, whose set R* cannot state, carries unknownRV.
func (o *compositeOffer) decide(t *Trace, pt float64, salts []uint64) Decision {
	if o.oneSet() {
		return o.decideOne(t, pt, salts)
	}
	var (
		regions [maxOfferBases]region
		k       keepSet
	)
	for i, b := range o.bases[:o.nb] {
		r := &regions[i]
		r.salt, r.floor = b.salt, k.floor(t, b.salt)
		if b.up > 0 {
			r.spans[r.n] = span{t.Scale(thresholdOf(b.up, 1)).Unsigned(), top}
			r.n++
		}
		if b.down > 0 {
			r.spans[r.n] = span{r.floor, top + r.floor - t.Scale(thresholdOf(b.down, 1)).Unsigned()}
			r.n++
		}
	}
	kept := t.derived // derive sets t.derived; a refusal leaves it as it was
	th, rv, ok := k.derive(t, salts, regions[:o.nb])
	switch {
	case !ok:
		t.derived = kept
		return Decision{rv: unknownRV} // not in K
	case rv != derivedRV:
		return thinned(t, 1, pt, 0, salts) // K is every value
	}
	th = thresholdOf(th.Probability(), pt)
	if t.Scale(th).ShouldSample(t.derived) {
		return Decision{Verdict: Sampled, Threshold: th, rv: derivedRV}
	}
	t.derived = kept
	return Decision{rv: unknownRV}
}

// oneSet reports whether K is one threshold's set: every value, or the
// sets on one randomness only, or on its reflection only.
func (o *compositeOffer) oneSet() bool {
	return o.p >= 1 || o.nb == 1 && (o.bases[0].down == 0 || o.bases[0].up == 0)
}

// decideOne is decide when K is one threshold's set (oneSet).
func (o *compositeOffer) decideOne(t *Trace, pt float64, salts []uint64) Decision {
	if o.p >= 1 {
		return thinned(t, 1, pt, 0, salts)
	}
	b := o.bases[0]
	if b.down == 0 {
		return thinned(t, b.up, pt, b.salt, salts)
	}
	return thinned(t, b.down, pt, b.salt|reflectRV, salts)
}

// thinned decides t on the set {R ≥ th(m·pt)} of the randomness rv names.
func thinned(t *Trace, m, pt float64, rv uint8, salts []uint64) Decision {
	th := thresholdOf(m, pt)
	if th == otelsampling.AlwaysSampleThreshold {
		return Decision{Verdict: Sampled, Threshold: th}
	}
	if t.Scale(th).ShouldSample(decisionRandomness(t, rv, salts)) {
		return Decision{Verdict: Sampled, Threshold: th, rv: rv}
	}
	return Decision{Verdict: NotSampled, Threshold: th, rv: rv}
}

// chargeOffer charges a kept trace to the total's share and to each
// allocation its part of K.
func (p *composite) chargeOffer(t *Trace, o *compositeOffer) {
	n := float64(t.SpanCount)
	for i := range p.subs {
		if part := o.subs[i].part; part > 0 {
			p.subs[i].share.chargeCost(t.Now, n*part/o.p)
		}
	}
	p.total.chargeCost(t.Now, n)
}

// distinctSalts counts the distinct salts (FNV-1a states) in salts.
func distinctSalts(salts []uint64) int {
	n := 0
	for i, s := range salts {
		if !slices.Contains(salts[:i], s) {
			n++
		}
	}
	return n
}
