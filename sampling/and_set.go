package sampling

import (
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// The set of randomness values with which an and keeps a trace, for the
// trace's deterministic features, is the intersection of its sub-policies'
// sets: on each randomness (the trace's own, a salt) the sets {R ≥ th} nest
// into the strictest one's and the sets on the reflection {R' ≥ th} (not)
// too, so that what is left on one randomness is an interval of R, [up,
// top + floor − down); sets on independent randomness (salts) intersect
// into a product of those intervals, of measure the product of theirs.

// maxAndBases is the number of distinct randomness values an and follows
// for the exact set of a trace it keeps; with more, the trace is kept with
// the strictest threshold, as contrib keeps it.
const maxAndBases = 4

// andBase is the intersection of an and's sub-policies' sets on one
// randomness: {R ≥ up} ∩ {R' ≥ down}, AlwaysSampleThreshold where no
// sub-policy has a set.
type andBase struct {
	salt     uint8
	up, down otelsampling.Threshold
}

// andSets accumulates an and's sub-policies' sets for one trace.
type andSets struct {
	// strictest is the decision with the strictest threshold, with the
	// randomness it was decided on.
	strictest Decision
	bases     [maxAndBases]andBase
	n         int
	// first is the canonical randomness of the first set; mixed: a set on
	// another randomness, or one not stated (unknownRV); over: more than
	// maxAndBases randomness values.
	first                uint8
	hasRand, mixed, over bool
}

// eval evaluates the sub-policies on t, in order, and fills s with their
// sets. As contrib's And, a refusal ends what the evaluation does to the
// policies' state: when it is on randomness (the refusal carries a
// threshold), the sub-policies after it are asked for their sets as
// Redecide asks them (they learn and charge nothing), as drop's refusal
// does. empty: a sub-policy refused whatever the randomness (the set is
// empty, and nothing after it is asked); refused: one refused on
// randomness.
func (p and) eval(t *Trace, s *andSets) (refused, empty bool) {
	s.strictest = keepAlways
	var (
		redo    bool
		pending uint64
	)
	for _, sub := range p.subs {
		d := sub.Evaluate(t)
		if d.Verdict == InvertNotSampled || d.Verdict == NotSampled && d.Threshold == otelsampling.AlwaysSampleThreshold && d.rv&unknownRV == 0 {
			empty = true
			break
		}
		if d.Verdict == NotSampled && !refused {
			// The rest are asked as Redecide asks them.
			refused, redo, pending = true, t.redo, t.pending
			t.redo = true
		}
		switch {
		case d.rv&unknownRV != 0:
			s.mixed = true
		case d.Threshold == otelsampling.AlwaysSampleThreshold:
		default:
			s.add(d, canonicalSalt(p.salts, d.rv))
		}
	}
	if refused {
		t.redo, t.pending = redo, pending
	}
	return refused, empty
}

// add intersects s with the set of d, a decision on the randomness rv
// names (canonical: one salt state, one name).
func (s *andSets) add(d Decision, rv uint8) {
	if !s.hasRand {
		s.first, s.hasRand = rv, true
	}
	s.mixed = s.mixed || rv != s.first
	if otelsampling.ThresholdGreater(d.Threshold, s.strictest.Threshold) {
		s.strictest = d
	}
	var b *andBase
	for i := range s.bases[:s.n] {
		if s.bases[i].salt == rv&saltMask {
			b = &s.bases[i]
			break
		}
	}
	if b == nil {
		if s.n == maxAndBases {
			s.over = true
			return
		}
		s.bases[s.n] = andBase{salt: rv & saltMask, up: otelsampling.AlwaysSampleThreshold, down: otelsampling.AlwaysSampleThreshold}
		b = &s.bases[s.n]
		s.n++
	}
	if rv&reflectRV != 0 {
		b.down = maxThreshold(b.down, d.Threshold)
	} else {
		b.up = maxThreshold(b.up, d.Threshold)
	}
}

// derive is the decision of an and that keeps t, its sub-policies' sets
// being on different randomness: the probability P of the intersection
// (conditional on the head), the product of its intervals' measures, and
// a randomness R* derived from t's, T plus t's rank in the interval of
// the first randomness scaled onto [T, 2^56), T being P's threshold.
// Given that the trace is kept, its value on one randomness is uniform
// over that randomness's interval and independent of the others, so R* is
// uniform on [T, 2^56), as keepSet.derive's. The decision is on R*
// (derivedRV, in t.derived). When the set cannot be measured (more
// randomness values than maxAndBases), t is kept with the strictest
// threshold, as before.
func (s *andSets) derive(t *Trace, salts []uint64) Decision {
	fallback := s.strictest
	fallback.Verdict = Sampled
	if s.over || s.n == 0 {
		return fallback
	}
	p, rank := 1.0, 0.0
	for i, b := range s.bases[:s.n] {
		if int(b.salt) > len(salts) {
			return fallback
		}
		floor := floorOf(t, b.salt)
		lo, hi := floor, top
		if b.up != otelsampling.AlwaysSampleThreshold {
			lo = t.Scale(b.up).Unsigned()
		}
		if b.down != otelsampling.AlwaysSampleThreshold {
			hi = top + floor - t.Scale(b.down).Unsigned()
		}
		if lo >= hi {
			return fallback // the head sampler was not consistent
		}
		p *= float64(hi-lo) / float64(top-floor)
		if i == 0 {
			u := decisionRandomness(t, b.salt, salts).Unsigned()
			if u < lo || u >= hi {
				return fallback
			}
			rank = float64(u-lo) / float64(hi-lo)
		}
	}
	th, err := otelsampling.ProbabilityToThreshold(max(p, otelsampling.MinSamplingProbability))
	if err != nil {
		return fallback
	}
	lo := t.Scale(th).Unsigned()
	v := min(max(lo+uint64(rank*float64(top-lo)), lo), top-1)
	rnd, err := otelsampling.UnsignedToRandomness(v)
	if err != nil {
		return fallback
	}
	t.derived = rnd
	return Decision{Verdict: Sampled, Threshold: th, rv: derivedRV}
}

// evaluateForSet evaluates a composite's sub-policy so that its decision
// states its set whether it keeps t or not: every sub-policy does so
// already, but and's Evaluate keeps a trace whose sets are on different
// randomness on a derived randomness, which a composite cannot place (see
// set).
func evaluateForSet(e evaluator, t *Trace) Decision {
	if a, ok := e.(and); ok {
		return a.set(t)
	}
	return e.Evaluate(t)
}

// set is and's Evaluate for a composite: its decision carries the
// intersection of its sub-policies' sets, {R ≥ th} on their one
// randomness, th the strictest of their thresholds. When they sample on
// different randomness the intersection is not one threshold's set: a
// refusal then carries no threshold and a trace it keeps is kept with the
// strictest threshold (docs/policies/counts.md, Known gaps).
func (p and) set(t *Trace) Decision {
	var s andSets
	refused, empty := p.eval(t, &s)
	switch {
	case empty, refused && s.mixed:
		return Decision{}
	case refused:
		s.strictest.Verdict = NotSampled
	default:
		s.strictest.Verdict = Sampled
	}
	return s.strictest
}
