package sampling

// A composite (mode consistent) beside other top-level policies. Its kept
// set K is, on each randomness b it samples on, the top [1 − up_b, 1) and
// the bottom [0, down_b) of that randomness's values (in measure), and
// across the independent ones their union: K is a union of threshold sets,
// {R_b ≥ th(up_b)} and {R'_b ≥ th(down_b)}, which keepSet unites with the
// other policies' sets exactly. Deciding on its own derived randomness R*
// (compositeOffer.decide) is exact for the composite alone, but R* is not
// independent of the other policies' sets. So the engine asks a composite
// for those sets instead (composite.evaluateUnion), thinned by the total's share
// within each randomness by a common factor f, 1 − Π(1 − f·m_b) being
// P·p_t; the engine measures their union with the other policies' and
// derives one R* for the whole.

// unionSets is the number of sets a policy hands the engine: two per
// randomness keepSet follows.
const unionSets = 2 * maxBases

// evaluateUnion is Evaluate, K stated as the sets it writes to sets,
// each a decision on one randomness (Sampled when t's randomness is in it,
// else NotSampled), and their number; -1 when the returned decision states
// the set itself, as Evaluate's does (mode strict, K one threshold's set,
// or more randomness values than keepSet follows).
func (p *composite) evaluateUnion(t *Trace, sets *[unionSets]Decision) (Decision, int) {
	if p.total == nil {
		return p.Evaluate(t), -1
	}
	return p.decideShare(t, sets)
}

// sets states K, thinned by the total's probability pt, as the sets of
// threshold on each randomness: f·up_b of its top, f·down_b of its bottom
// (the reflection's top). It returns the decision, Sampled when t's
// randomness on some base is in its set (that set's threshold and
// randomness), and the number of sets; -1 when K does not fit (more bases
// than keepSet follows), the caller then deciding on R*.
func (o *compositeOffer) sets(t *Trace, pt float64, salts []uint64, sets *[unionSets]Decision) (Decision, int) {
	if o.nb > maxBases {
		return Decision{}, -1
	}
	f := o.thinning(pt)
	n := 0
	out := Decision{}
	add := func(m float64, rv uint8) {
		if m <= 0 {
			return
		}
		d := Decision{Threshold: thresholdOf(m, f), rv: rv}
		if t.Scale(d.Threshold).ShouldSample(decisionRandomness(t, rv, salts)) {
			d.Verdict = Sampled
			if out.Verdict != Sampled {
				out = d
			}
		}
		sets[n] = d
		n++
	}
	for _, b := range o.bases[:o.nb] {
		add(b.up, b.salt)
		add(b.down, b.salt|reflectRV)
	}
	if out.Verdict != Sampled && n > 0 {
		out = sets[0]
	}
	return out, n
}

// thinning returns f in [0, 1] such that the union of the bases' sets,
// each base's measure m_b thinned to f·m_b, measures P·pt: 1 − Π(1 −
// f·m_b) = P·pt, by bisection (the union's measure grows with f). Only
// the sets the bisection gives matter: the engine measures them.
func (o *compositeOffer) thinning(pt float64) float64 {
	switch {
	case pt >= 1:
		return 1
	case o.nb == 1:
		return pt // f·m = P·pt, m being P
	}
	want := o.p * pt
	lo, hi := 0.0, 1.0
	for range 40 {
		f := (lo + hi) / 2
		miss := 1.0
		for _, b := range o.bases[:o.nb] {
			miss *= 1 - f*b.m
		}
		if 1-miss < want {
			lo = f
		} else {
			hi = f
		}
	}
	return (lo + hi) / 2
}
