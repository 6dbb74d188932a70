package sampling

import (
	"math"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// A budget's classes and the union of the policies.
//
// The engine keeps a trace when its randomness falls in the union S of the
// top-level policies' sets (keepSet). A budget splits S among its classes
// in priority order: class c's part A_c is the set of c's policies less
// the sets of the classes before it, so a trace is in the class of
// highest priority among the policies that sample it. Which part a trace
// is in depends on its randomness wherever the sets of two classes
// overlap, so thinning a class's traces at q·p_c on the randomness the
// union marks (uniform over S, not within A_c) does not keep a fraction
// p_c of them, and the marks are wrong (0.06 of the truth measured over
// [probabilistic 30, not(probabilistic 50), salted probabilistic 10]).
//
// When the policies that can keep a trace are in one class, or some are
// in classes whose parts are empty for it (a class that keeps every
// trace before the others), its class does not depend on its randomness,
// and the budget thins it at q·p_c on the union's randomness (budget.thin).
// Otherwise classSplit and splitParts measure each part, in the
// measure-preserving order derive uses, and the budget keeps the first
// p_c of each part: the trace is kept with probability K = Σ_c p_c·|A_c|,
// marked with K's threshold, and carries a randomness R* derived from its
// rank among the kept, uniform on [T_K, 2^56) given that it is kept.
//
// A class defined by the trace's deterministic features only (the first
// class whose set is not empty) would mark right too, but it moves every
// trace a sampler of a high class could keep into that class: over
// classes [probabilistic 10, dynamic], every trace would be the first
// class's and the second's demand 0. It remains the rule where the parts
// cannot be measured (a set the union does not know, more than maxSplit
// policies with a set, a drop's survivors on several randomness values):
// it is right whenever the union's mark is.

// maxSplit is the number of top-level policies with a set (sampled, or
// refused on randomness) that a decision splits among classes.
const maxSplit = 8

// splitEntry is a top-level policy's set: {R ≥ th} on the randomness rv
// names (reflected: R' ≥ th), all of it when full.
type splitEntry struct {
	th    otelsampling.Threshold
	class int32
	rv    uint8
	full  bool
}

// classSplit records, during one decision with a budget, the top-level
// policies' sets with their budget classes. Classes are stored plus one,
// 0 standing for none.
type classSplit struct {
	n    int
	over bool // more than maxSplit entries
	// multi: the entries are in more than one class.
	multi bool
	// hi is the first class (in priority order) of an entry, cx the first
	// class of an entry that samples the trace: its class.
	hi, cx int
	// hiFull: a policy of class hi keeps the trace whatever its
	// randomness, so hi's part is all of the kept set.
	hiFull bool
	ents   [maxSplit]splitEntry
}

// hasSet reports whether d, a top-level policy's decision, has a set of
// randomness values that is not empty: it samples the trace, or refused
// it on randomness.
func (d *Decision) hasSet() bool {
	return d.Verdict == Sampled || d.Verdict == NotSampled && (d.Threshold != otelsampling.AlwaysSampleThreshold || d.rv&unknownRV != 0)
}

// note records the decision d of a policy of class ci (-1: none), which
// hasSet.
func (s *classSplit) note(ci int, d *Decision) {
	if ci < 0 {
		return
	}
	c := ci + 1
	full := d.Verdict == Sampled && d.Threshold == otelsampling.AlwaysSampleThreshold
	if s.hi != 0 && c != s.hi {
		s.multi = true
	}
	switch {
	case s.hi == 0 || c < s.hi:
		s.hi, s.hiFull = c, full
	case c == s.hi:
		s.hiFull = s.hiFull || full
	}
	if d.Verdict == Sampled && (s.cx == 0 || c < s.cx) {
		s.cx = c
	}
	if s.n == maxSplit {
		s.over = true
		return
	}
	s.ents[s.n] = splitEntry{th: d.Threshold, class: int32(ci), rv: d.rv, full: full}
	s.n++
}

// take applies the budget to a trace the policies keep, policy pi being
// the first that sampled it, with the conditional threshold q on the
// randomness rv names: it returns the threshold and randomness to mark and
// whether the budget keeps the trace. s and set are the decision's sets
// (nil in rule mode, where the matching rule is the class).
func (b *budget) take(t *Trace, pi int, q otelsampling.Threshold, rv uint8, set *keepSet, s *classSplit, salts []uint64) (otelsampling.Threshold, uint8, bool) {
	ci := b.classOf[pi]
	if s != nil && s.hi != 0 {
		ci = s.hi - 1
		// With one class, or a first class that keeps every trace (errors
		// over a baseline), the class does not depend on the randomness.
		if s.multi && !s.hiFull && !s.over {
			var parts splitParts
			switch parts.measure(t, set, s, salts) {
			case splitMany:
				return b.thinParts(t, &parts, q, rv)
			case splitOne:
				ci = s.cx - 1
			}
		}
	}
	th, ok := b.thin(t, ci, q, decisionRandomness(t, rv, salts))
	return th, rv, ok
}

// thinParts counts the trace in its class's demand and keeps it with the
// probability K of the kept parts' union (see the top of this file).
func (b *budget) thinParts(t *Trace, parts *splitParts, q otelsampling.Threshold, rv uint8) (otelsampling.Threshold, uint8, bool) {
	if !b.count(t, parts.cx) || (!b.dropErrors && t.StatusMask&StatusErrorBit != 0) {
		return q, rv, true
	}
	var k, before float64
	all := true
	for i := range parts.n {
		c := &b.classes[parts.class[i]]
		p := 1.0
		if !c.neverDrop {
			p = min(math.Float64frombits(c.p.Load()), 1)
		}
		all = all && p >= 1
		m := p * parts.m[i]
		if parts.class[i] < parts.cx {
			before += m
		}
		if parts.class[i] == parts.cx && p < 1 && parts.rank >= m {
			return q, rv, false // not in the first p_c of its part
		}
		k += m
	}
	if all {
		return q, rv, true // nothing thinned: the union's own mark
	}
	th, err := otelsampling.ProbabilityToThreshold(max(k, otelsampling.MinSamplingProbability))
	if err != nil {
		return q, rv, true
	}
	lo := t.Scale(th).Unsigned()
	v := lo + uint64((before+parts.rank)/k*float64(top-lo))
	v = min(max(v, lo), top-1)
	if t.derived, err = otelsampling.UnsignedToRandomness(v); err != nil {
		return q, rv, true
	}
	return th, derivedRV, true
}

// Outcomes of splitParts.measure.
const (
	splitUnknown = iota // the parts cannot be measured
	splitOne            // one part is not empty: the trace's class is known
	splitMany           // several parts
)

// splitParts is the measure of each class's part of the kept set, for one
// trace, in priority order (conditional on the head), and the trace's
// rank within its class's part.
type splitParts struct {
	n     int
	class [maxSplit]int
	m     [maxSplit]float64
	cx    int     // the trace's class
	rank  float64 // its rank within cx's part, in [0, m of cx)
}

// axis is one randomness of a split: the trace's own or a salted one, in
// absolute terms within [floor, top), cut to [lo, hi) by a drop's
// survivors. A prefix of the classes keeps [up, top) ∪ [floor, down).
type axis struct {
	salt         uint8
	floor, x     uint64
	lo, hi       uint64
	up, down     uint64
	prevUp, prev uint64 // up and down before the class being measured
}

// axes are the randomness values of a split, at most maxBases.
type axes struct {
	a [maxBases]axis
	n int
}

// add returns the axis of salt, added if new; nil when there are
// maxBases already.
func (x *axes) add(t *Trace, set *keepSet, salt uint8, salts []uint64) *axis {
	for i := range x.n {
		if x.a[i].salt == salt {
			return &x.a[i]
		}
	}
	if x.n == maxBases {
		return nil
	}
	a := &x.a[x.n]
	x.n++
	rnd := t.Randomness
	if salt != 0 {
		rnd = saltedRandomness(salts[salt-1], t.ID)
	}
	f := set.floor(t, salt)
	*a = axis{salt: salt, floor: f, x: rnd.Unsigned(), lo: f, hi: top, up: top, down: f}
	return a
}

// ival is a set [lo, hi) of one axis's values, empty when hi <= lo.
type ival struct{ lo, hi uint64 }

func (v ival) len() uint64 {
	if v.hi <= v.lo {
		return 0
	}
	return v.hi - v.lo
}

func (v ival) cut(lo, hi uint64) ival { return ival{max(v.lo, lo), min(v.hi, hi)} }

func (v ival) has(x uint64) bool { return x >= v.lo && x < v.hi }

// measure fills p from the decision's sets; see the outcomes.
func (p *splitParts) measure(t *Trace, set *keepSet, s *classSplit, salts []uint64) int {
	// A composite's derived randomness (set.derived) is not one of the
	// axes: its set is not {R ≥ th} on the trace's own randomness.
	if set == nil || set.inexact || set.survInexact || set.derived > 0 || s.cx == 0 {
		return splitUnknown
	}
	var ax axes
	for _, e := range s.ents[:s.n] {
		if !e.full && ax.add(t, set, e.rv&saltMask, salts) == nil {
			return splitUnknown
		}
	}
	if set.hasSurv {
		a := ax.add(t, set, set.survRV&saltMask, salts)
		if a == nil {
			return splitUnknown
		}
		if v := t.Scale(set.survTh).Unsigned(); set.survRV&reflectRV != 0 {
			a.hi = top + a.floor - v
		} else {
			a.lo = v
		}
	}
	as, na := ax.a[:ax.n], ax.n
	if na == 0 {
		return splitOne // every set is full: the first class takes all
	}
	for i := range na {
		if as[i].x < as[i].floor || !(ival{as[i].lo, as[i].hi}).has(as[i].x) {
			return splitUnknown // the head sampler was not consistent
		}
	}
	p.cx = s.cx - 1
	found, nonEmpty := false, 0
	for c := s.hi - 1; c >= 0; {
		for i := range na {
			as[i].prevUp, as[i].prev = as[i].up, as[i].down
		}
		full := false
		next := -1
		for _, e := range s.ents[:s.n] {
			switch ec := int(e.class); {
			case ec > c:
				if next < 0 || ec < next {
					next = ec
				}
				continue
			case ec < c:
				continue
			}
			if e.full {
				full = true
				continue
			}
			a := ax.add(t, set, e.rv&saltMask, salts)
			v := t.Scale(e.th).Unsigned()
			if e.rv&reflectRV != 0 {
				a.down = max(a.down, top+a.floor-v)
			} else {
				a.up = min(a.up, v)
			}
		}
		if full {
			for i := range na {
				as[i].up = as[i].floor
			}
		}
		m, rank, in := part(as)
		if p.n == maxSplit {
			return splitUnknown
		}
		p.class[p.n], p.m[p.n] = c, m
		p.n++
		if m > 0 {
			nonEmpty++
		}
		if c == p.cx {
			if !in {
				return splitUnknown // not in its class's part: rounding
			}
			p.rank, found = rank, true
		}
		if full {
			break // the classes after it have nothing left
		}
		c = next
	}
	switch {
	case !found:
		return splitUnknown
	case nonEmpty == 1:
		return splitOne
	}
	return splitMany
}

// part returns the measure of a class's part, the kept set of the classes
// up to it (up, down) less that of the classes before it (prevUp, prev),
// as a probability, and the trace's rank within it, when it is in it. The
// part is the disjoint union over axes j of the products Z_1 × … × Z_j-1 ×
// W_j × Y_j+1 × … , Y being what the classes before keep not, Z what the
// classes up to this one keep not, W = Y − Z; a trace in the j-th product
// is ranked by its value on axis j alone, scaled: uniform over the part.
func part(axes []axis) (m, rank float64, in bool) {
	var (
		y, z [maxBases]float64
		ys   [maxBases]ival
		ws   [maxBases][2]ival
	)
	for i := range axes {
		a := &axes[i]
		w := float64(top - a.floor)
		ys[i] = ival{a.prev, a.prevUp}.cut(a.lo, a.hi)
		y[i] = float64(ys[i].len()) / w
		z[i] = float64(ival{a.down, a.up}.cut(a.lo, a.hi).len()) / w
		if a.down >= a.up {
			ws[i] = [2]ival{ys[i], {}}
		} else {
			ws[i] = [2]ival{ys[i].cut(a.floor, a.down), ys[i].cut(a.up, top)}
		}
	}
	inY := true
	for i := range axes {
		inY = inY && ys[i].has(axes[i].x)
	}
	head := 1.0 // Π z before j
	for j := range axes {
		tail := 1.0 // Π y after j
		for i := j + 1; i < len(axes); i++ {
			tail *= y[i]
		}
		w := float64(top - axes[j].floor)
		wj := float64(ws[j][0].len()+ws[j][1].len()) / w
		if inY && !in {
			x, before := axes[j].x, uint64(0)
			for _, s := range ws[j] {
				if s.has(x) {
					rank, in = m+float64(before+x-s.lo)/w*head*tail, true
					break
				}
				before += s.len()
			}
		}
		m += head * wj * tail
		head *= z[j]
	}
	return m, rank, in
}
