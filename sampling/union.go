package sampling

import (
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// The engine keeps a trace when some top-level policy samples it and no
// drop policy drops it. Each policy that samples on randomness keeps, for
// the trace's deterministic features (status, attributes...), a set of
// randomness values: {R ≥ th} on the trace's own randomness or a salted
// one, or {R' ≥ th} on its reflection (not). The trace's probability of
// being kept is the measure of the union of those sets, cut by the sets
// the drop policies let through; keepSet computes it. When the kept set
// is one such set, the trace is marked with that set's threshold on its
// randomness, as before. Otherwise (a union of sets on different
// randomness, or an interval of R) the engine derives a randomness R* from
// the trace's randomness values, uniform on [T, 2^56) among the kept
// traces and below T for the others, T being the threshold of the kept
// set's probability: the trace is marked with T and carries R* as its rv
// (derivedRV), so that the budget and samplers downstream can thin it on
// R* consistently.

// maxBases is the number of distinct randomness values (the trace's own,
// each salt) keepSet follows; with more, the engine keeps the most
// permissive threshold, as contrib.
const maxBases = 4

// top is 2^56, one more than the largest randomness.
const top = otelsampling.MaxAdjustedCount

// keepSet accumulates, for one trace, the sets of randomness values with
// which the top-level policies keep it and the set the drop policies let
// through.
type keepSet struct {
	// full: a policy keeps the trace whatever its randomness.
	full bool
	// inexact: a policy's set is not known (an and over samplers on
	// different randomness), or there are more than maxBases randomness
	// values.
	inexact bool
	n       int
	bases   [maxBases]baseSet

	// The drop policies' survivors: {R_survRV ≥ survTh}, when hasSurv.
	// survInexact: drop policies let through on different randomness.
	survTh      otelsampling.Threshold
	survRV      uint8
	hasSurv     bool
	survInexact bool

	// derived counts the policies that kept the trace on a randomness of
	// their own derived from the trace's (an and over samplers on
	// different randomness, a composite the engine did not ask for its
	// sets; derivedRV in Trace.derived), derivedTh the last one's
	// threshold: exact only when it is the one set on randomness.
	derived   int
	derivedTh otelsampling.Threshold
}

// baseSet is the union of the policies' sets on one randomness (salt 0:
// the trace's own): {R ≥ up} ∪ {R' ≥ down}, conditional thresholds, each
// NeverSampleThreshold when no policy has one.
type baseSet struct {
	salt     uint8
	up, down otelsampling.Threshold
}

// add counts the set of a top-level policy's decision d: Sampled or
// NotSampled with the threshold it was decided on.
func (k *keepSet) add(d Decision) {
	switch {
	case d.Verdict != Sampled && d.Verdict != NotSampled:
		return
	case d.rv&unknownRV != 0:
		k.inexact = true
		return
	case d.rv&derivedRV != 0:
		k.derived++
		k.derivedTh = d.Threshold
		k.inexact = k.inexact || d.Verdict != Sampled
		return
	case d.Threshold == otelsampling.AlwaysSampleThreshold:
		// Sampled with probability 1, or refused whatever the randomness.
		k.full = k.full || d.Verdict == Sampled
		return
	}
	b := k.base(d.rv & saltMask)
	if b == nil {
		return
	}
	if d.rv&reflectRV != 0 {
		b.down = minThreshold(b.down, d.Threshold)
	} else {
		b.up = minThreshold(b.up, d.Threshold)
	}
}

// base returns the set on the randomness of salt, nil when there are too
// many (the set is then inexact).
func (k *keepSet) base(salt uint8) *baseSet {
	for i := range k.n {
		if k.bases[i].salt == salt {
			return &k.bases[i]
		}
	}
	if k.n == maxBases {
		k.inexact = true
		return nil
	}
	k.bases[k.n] = baseSet{salt: salt, up: otelsampling.NeverSampleThreshold, down: otelsampling.NeverSampleThreshold}
	k.n++
	return &k.bases[k.n-1]
}

// survive counts a drop policy's refusal d (NotSampled): when it carries a
// threshold, the drop would have dropped the traces with randomness at or
// above it, so the survivors are those below: the complement threshold on
// the reflected randomness, as for not.
func (k *keepSet) survive(d Decision) {
	if d.Threshold == otelsampling.AlwaysSampleThreshold || d.rv&unknownRV != 0 {
		return
	}
	c, err := otelsampling.UnsignedToThreshold(top - d.Threshold.Unsigned())
	if err != nil {
		k.survInexact = true
		return
	}
	rv := d.rv ^ reflectRV
	switch {
	case !k.hasSurv:
		k.survTh, k.survRV, k.hasSurv = c, rv, true
	case k.survRV == rv:
		k.survTh = maxThreshold(k.survTh, c)
	default:
		k.survInexact = true
	}
}

// span is a set [lo, hi) of one randomness's values, in absolute (scaled)
// terms.
type span struct{ lo, hi uint64 }

// region is the kept set on one randomness: at most two spans, within
// [floor, top).
type region struct {
	salt  uint8
	floor uint64
	spans [2]span
	n     int
}

func (r *region) measure() uint64 {
	var m uint64
	for _, s := range r.spans[:r.n] {
		m += s.hi - s.lo
	}
	return m
}

// intersect cuts r to [lo, hi).
func (r *region) intersect(lo, hi uint64) {
	n := 0
	for _, s := range r.spans[:r.n] {
		s.lo, s.hi = max(s.lo, lo), min(s.hi, hi)
		if s.lo < s.hi {
			r.spans[n] = s
			n++
		}
	}
	r.n = n
}

// mark returns the conditional threshold the trace is kept with and the
// randomness it is decided on (derivedRV: t.derived, which it sets), and
// true; false when the kept set's probability is not known exactly, the
// caller then keeping its earlier rule. For a trace InvertSampled keeps,
// the caller sets full.
func (k *keepSet) mark(t *Trace, salts []uint64) (otelsampling.Threshold, uint8, bool) {
	if k.inexact {
		return otelsampling.AlwaysSampleThreshold, 0, false
	}
	surv := k.hasSurv && !k.survInexact
	if k.full && !surv {
		return otelsampling.AlwaysSampleThreshold, 0, true
	}
	if k.derived > 0 && !k.full {
		// A policy's derived randomness is not independent of the others'.
		if k.derived == 1 && k.n == 0 && !surv {
			return k.derivedTh, derivedRV, true
		}
		return otelsampling.AlwaysSampleThreshold, 0, false
	}
	var (
		regions [maxBases]region
		n       int
	)
	if k.full {
		regions[0] = region{salt: k.survRV & saltMask}
		regions[0].floor = k.floor(t, regions[0].salt)
		regions[0].spans[0], regions[0].n = span{regions[0].floor, top}, 1
		n = 1
	} else {
		for _, b := range k.bases[:k.n] {
			r := region{salt: b.salt, floor: k.floor(t, b.salt)}
			if b.up != otelsampling.NeverSampleThreshold {
				r.spans[r.n] = span{t.Scale(b.up).Unsigned(), top}
				r.n++
			}
			if b.down != otelsampling.NeverSampleThreshold {
				r.spans[r.n] = span{r.floor, top + r.floor - t.Scale(b.down).Unsigned()}
				r.n++
			}
			if r.n == 2 && r.spans[1].hi >= r.spans[0].lo {
				// The two sets cover every randomness a head passed.
				r.spans[0], r.n = span{r.floor, top}, 1
			}
			if r.n == 1 && r.spans[0] == (span{r.floor, top}) && !surv {
				return otelsampling.AlwaysSampleThreshold, 0, true
			}
			regions[n] = r
			n++
		}
	}
	if surv {
		if n != 1 || regions[0].salt != k.survRV&saltMask {
			// Survivors on one randomness, kept on another: not exact.
			return otelsampling.AlwaysSampleThreshold, 0, false
		}
		s := t.Scale(k.survTh).Unsigned()
		if k.survRV&reflectRV != 0 {
			regions[0].intersect(regions[0].floor, top+regions[0].floor-s)
		} else {
			regions[0].intersect(s, top)
		}
	}
	if n == 1 && regions[0].n == 1 && !surv {
		// One set: its own threshold, on its own randomness.
		b := k.bases[0]
		if b.up != otelsampling.NeverSampleThreshold {
			return b.up, b.salt, true
		}
		return b.down, b.salt | reflectRV, true
	}
	if n == 1 && regions[0].n == 1 && surv && k.full {
		return k.survTh, k.survRV, true
	}
	return k.derive(t, salts, regions[:n])
}

// floor is the least randomness of salt that a trace can have: the head
// threshold for the trace's own, 0 for a salted one (a salt applies only
// to traces without a head threshold).
func (k *keepSet) floor(t *Trace, salt uint8) uint64 { return floorOf(t, salt) }

// floorOf is keepSet.floor.
func floorOf(t *Trace, salt uint8) uint64 {
	if salt != 0 || !t.HasHead {
		return 0
	}
	return t.HeadThreshold.Unsigned()
}

// derive marks a trace kept when its randomness of some region falls in
// that region, the regions' randomness values being independent: it
// returns the threshold T of the probability P of the union (conditional
// on the head) and sets t.derived to R*, T plus the trace's rank among the
// kept traces scaled to [T, 2^56): the kept set in the order of the
// regions, a trace in region j counting only when in no earlier region.
// Given that the trace is kept, R* is uniform on [T, 2^56) up to the
// rounding of one randomness value.
func (k *keepSet) derive(t *Trace, salts []uint64, regions []region) (otelsampling.Threshold, uint8, bool) {
	// miss is the probability of missing the regions before j; at is the
	// probability of the kept traces before the trace's place.
	miss, at, found := 1.0, 0.0, false
	for _, r := range regions {
		w := float64(top - r.floor)
		m := float64(r.measure()) / w
		if !found {
			rnd := t.Randomness
			if r.salt != 0 {
				rnd = saltedRandomness(salts[r.salt-1], t.ID)
			}
			u := rnd.Unsigned()
			if r.salt == 0 && u < r.floor {
				return otelsampling.AlwaysSampleThreshold, 0, false // the head sampler was not consistent
			}
			var before uint64
			for _, s := range r.spans[:r.n] {
				if u >= s.lo && u < s.hi {
					at += miss * float64(before+u-s.lo) / w
					found = true
					break
				}
				before += s.hi - s.lo
			}
			if !found {
				at += miss * m
			}
		}
		miss *= 1 - m
	}
	p := 1 - miss
	if !found || p <= 0 {
		return otelsampling.AlwaysSampleThreshold, 0, false
	}
	if p >= 1 {
		return otelsampling.AlwaysSampleThreshold, 0, true
	}
	th, err := otelsampling.ProbabilityToThreshold(max(p, otelsampling.MinSamplingProbability))
	if err != nil {
		return otelsampling.AlwaysSampleThreshold, 0, false
	}
	lo := t.Scale(th).Unsigned()
	v := lo + uint64(at/p*float64(top-lo))
	v = min(max(v, lo), top-1)
	if t.derived, err = otelsampling.UnsignedToRandomness(v); err != nil {
		return otelsampling.AlwaysSampleThreshold, 0, false
	}
	return th, derivedRV, true
}

func minThreshold(a, b otelsampling.Threshold) otelsampling.Threshold {
	if otelsampling.ThresholdLessThan(a, b) {
		return a
	}
	return b
}
