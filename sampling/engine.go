package sampling

import (
	"errors"
	"fmt"
	"math/bits"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// Engine evaluates a policy list and combines the verdicts.
type Engine struct {
	policies   []evaluator
	unions     []*composite // per policy: non-nil for a composite (composite_union.go)
	names      []string
	drop       []bool // policies of type drop, evaluated first
	preds      []func(*SpanView) bool
	keys       []func(*SpanView) uint64
	needSpans  bool
	chargers   []charger
	salts      []uint64 // of Decision.rv 1, 2...
	budget     *budget  // nil when off
	observers  []observer
	firstMatch bool           // sample_on_first_match (WithFirstMatch)
	rootCond   *rootCondition // root_span_condition, nil when off
	arrival    uint8          // status bits of keep_on_arrival (ArrivalMask)
	rules      []matcher      // rule mode (WithRules): policies[i] is rule i's sampler
}

// decisionObserver is implemented by a policy that learns from the engine's
// final decisions, as adaptive's max_share needs the kept rate. NewEngine
// detects it on top-level policies (not on sub-policies); Decide then calls
// Observe once per trace with its final decision, own being true when the
// decision names the observer (it is the first policy that sampled). Observe
// must not allocate and must be safe for concurrent use.
type decisionObserver interface {
	Observe(t *Trace, d Decision, own bool)
}

type observer struct {
	decisionObserver
	name string
}

// NewEngine builds the policies of cfgs, which must have passed
// ValidatePolicies, with the given options (WithBudget).
func NewEngine(cfgs []PolicyConfig, opts ...Option) (*Engine, error) {
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	e := &Engine{firstMatch: o.firstMatch}
	key := "policies::%d"
	if len(o.rules) > 0 {
		if len(cfgs) > 0 {
			return nil, errors.New("rules: set rules or policies, not both")
		}
		cfgs, key, e.firstMatch = RulePolicies(o.rules), "rules::%d::sampler", false
	}
	b := &builder{}
	for i := range cfgs {
		c := &cfgs[i]
		f, ok := registry[c.Type]
		if !ok {
			return nil, fmt.Errorf(key+"::type: unknown policy type %q", i, c.Type)
		}
		settings := c.settings
		if settings == nil {
			settings = f.defaultConfig()
		}
		p, err := f.create(settings, b)
		if err != nil {
			return nil, fmt.Errorf(key+" (%s): %w", i, c.Name, err)
		}
		e.policies = append(e.policies, p)
		u, _ := p.(*composite)
		e.unions = append(e.unions, u)
		e.names = append(e.names, c.Name)
		e.drop = append(e.drop, c.Type == "drop")
		if o, ok := p.(decisionObserver); ok {
			e.observers = append(e.observers, observer{o, c.Name})
		}
		if sc, ok := p.(statusCode); ok && sc.arrival {
			e.arrival |= sc.mask
			b.arrivals--
		}
	}
	if b.arrivals > 0 {
		return nil, errors.New("keep_on_arrival: only a top-level status_code policy can keep on arrival (a composing policy decides on the whole trace)")
	}
	if len(o.rules) > 0 {
		if e.arrival != 0 {
			return nil, errors.New("keep_on_arrival: not available in a rule (a rule decides on the whole trace, in order)")
		}
		needSpans, err := e.newMatchers(o.rules)
		if err != nil {
			return nil, err
		}
		b.needSpans = b.needSpans || needSpans
	}
	e.preds, e.keys, e.needSpans, e.chargers, e.salts = b.preds, b.keys, b.needSpans, b.chargers, b.salts
	budget, err := newBudget(&o.budget, cfgs)
	if err != nil {
		return nil, err
	}
	e.budget = budget
	if len(e.keys) > 0 { // roots matter only for keys
		if e.rootCond, err = newRootCondition(o.rootConds); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// ArrivalMask returns the status bits (StatusErrorBit...) of the top-level
// status_code policies with keep_on_arrival: a buffer decides a trace as
// soon as its Trace.StatusMask has one of them, on the spans it has so far.
// Zero when no policy keeps on arrival.
func (e *Engine) ArrivalMask() uint8 { return e.arrival }

// NeedsView reports whether ObserveSpan has anything to do.
func (e *Engine) NeedsView() bool { return len(e.preds) > 0 || len(e.keys) > 0 }

// NeedsSpans reports whether Decide needs Trace.Spans.
func (e *Engine) NeedsSpans() bool { return e.needSpans }

// ObserveSpan updates t's span predicates and, for a root span, its keys:
// a span without a parent, or one for which root_span_condition holds
// (WithRootSpanCondition), the first one giving the keys.
func (e *Engine) ObserveSpan(t *Trace, v *SpanView) {
	for i, f := range e.preds {
		if bit := uint64(1) << i; t.Matched&bit == 0 && f(v) {
			t.Matched |= bit
		}
	}
	if v.Root || (e.rootCond != nil && t.KeySet == 0 && e.rootCond.holds(v)) {
		for i, f := range e.keys {
			if bit := uint8(1) << i; t.KeySet&bit == 0 {
				t.Keys[i] = f(v)
				t.KeySet |= bit
			}
		}
	}
}

// Decide evaluates every policy and combines the verdicts as contrib's
// tail_sampling does:
//   - drop policies are evaluated first; if one answers Dropped, the trace
//     is dropped and nothing else is evaluated;
//   - otherwise every policy is evaluated (rate-limiting policies count what
//     they see), and
//   - an InvertNotSampled verdict drops the trace;
//   - else a Sampled verdict keeps it, named after the first policy that
//     sampled, with the most permissive threshold among those that did;
//   - else InvertSampled keeps it (probability 1) if no policy answered
//     NotSampled;
//   - else it is not sampled.
//
// A kept trace's threshold is then the probability of its being kept:
// that of the union of the sets of randomness values with which the
// policies keep it, within the set the drop policies let through (a drop
// that refused on randomness lets through the traces below its threshold,
// as not keeps them). When the policies sample on one randomness and
// nothing drops on it, that is the most permissive threshold above; when
// it is not known exactly (an and over samplers on different randomness
// beside another sampler, survivors of a drop kept on another randomness),
// the most permissive threshold stays. A composite states its kept set as
// its sets on the trace's randomness values (evaluate).
// See keepSet and docs/policies/counts.md.
//
// With a budget (WithBudget), a trace so kept with threshold q is then kept
// only if it passes the threshold of q·p_c, p_c being the probability of its
// class, the highest-priority class of the policies that sample it; where
// that class depends on the trace's randomness (policies of different
// classes overlap), the budget keeps the fraction p_c of each class's part
// and marks the probability of what it keeps, on a derived randomness
// (budget_split.go). One the budget drops is NotSampled but still names the
// policy.
//
// A kept trace's threshold is then scaled by the head sampler's (Trace.Scale):
// head-sampled at p and kept at q, it is marked p·q.
//
// With sample_on_first_match (WithFirstMatch), the first policy that
// samples decides at once: the policies after it learn and charge nothing,
// but are asked for a more permissive threshold (Engine.probe), and an
// InvertNotSampled after it no longer vetoes, as in contrib.
//
// Policies that are decision observers (adaptive) then observe the final
// decision.
//
// In rule mode (WithRules) the first rule that matches decides instead
// (decideRules); the budget, the head threshold and the observers apply
// as above, the rule's sampler standing for the policy.
//
// Decide is a trace's first decision: it forgets what earlier decisions
// on t did, so a Trace may be reused for another trace. Decide a trace
// again with Redecide.
func (e *Engine) Decide(t *Trace) Decision {
	t.charged, t.pending, t.redo, t.counted = 0, 0, false, false
	d := e.decide(t)
	for _, o := range e.observers {
		o.Observe(t, d, d.Policy == o.name)
	}
	t.observed = d.Keep()
	return d
}

// Redecide decides again on a trace Decide (or Redecide) has decided
// before, such as a dropped trace whose late spans brought an error. It
// combines the verdicts as Decide does, on the trace as it is now, but what
// the earlier decisions did to the policies' shared state is not done
// twice:
//
//   - the models learn nothing: adaptive judges the trace against its key's
//     model without adding it, nor ticking its controller; dynamic keeps it
//     with its key's current probability without counting it, nor adjusting;
//     a key neither has seen is judged as new, and not added;
//   - a limiter (rate_limiting, bytes_limiting, composite, also as a
//     sub-policy) answers as it would now but charges nothing during the
//     evaluation; if the final decision keeps the trace, each limiter that
//     admitted it now and had not charged it in an earlier decision is
//     charged then, as much as Decide would have charged (a limiter that
//     already charged answers Sampled and is not charged for the spans the
//     trace gained since);
//   - the budget counts the trace in its class's demand only if no earlier
//     decision counted it (demand is what the policies keep, before the
//     budget, so a trace the policies keep now counts even if the budget
//     drops it); its probabilities are not recomputed;
//   - the decision observers (adaptive's max_share) see the decision only
//     if it keeps the trace and no earlier one did.
//
// Redecide on a trace never decided behaves as Decide minus the learning.
func (e *Engine) Redecide(t *Trace) Decision {
	t.redo, t.pending = true, 0
	d := e.decide(t)
	if d.Keep() {
		for p := t.pending &^ t.charged; p != 0; p &= p - 1 {
			e.chargers[bits.TrailingZeros64(p)].charge(t)
		}
		t.charged |= t.pending
		if !t.observed {
			for _, o := range e.observers {
				o.Observe(t, d, d.Policy == o.name)
			}
			t.observed = true
		}
	}
	t.redo, t.pending = false, 0
	return d
}

func (e *Engine) decide(t *Trace) Decision {
	if e.rules != nil {
		return e.decideRules(t)
	}
	var set keepSet
	var split *classSplit // the sets by budget class, with a budget
	if e.budget != nil {
		split = &classSplit{}
	}
	for i, p := range e.policies {
		if !e.drop[i] {
			continue
		}
		d := p.Evaluate(t)
		if d.Verdict == Dropped {
			return Decision{Verdict: Dropped, Policy: e.names[i]}
		}
		set.survive(d)
	}
	var (
		sampled, invertSampled = -1, -1
		invertNotSampled       bool
		notSampled             bool
		th                     = otelsampling.NeverSampleThreshold
		rv                     uint8 // the randomness th was decided on
	)
	for i := range e.policies {
		if e.drop[i] {
			continue
		}
		d := e.evaluate(t, i, &set, split)
		switch d.Verdict {
		case Sampled:
			if sampled < 0 {
				sampled = i
			}
			if otelsampling.ThresholdLessThan(d.Threshold, th) {
				// The most permissive, and the randomness it was decided on.
				th, rv = d.Threshold, d.rv
			}
			if e.firstMatch && !invertNotSampled {
				th, rv = e.probe(t, i+1, th, rv, &set, split)
				th, rv = e.union(t, &set, th, rv)
				return e.keepSets(t, sampled, th, rv, &set, split)
			}
		case NotSampled:
			notSampled = true
		case InvertSampled:
			if invertSampled < 0 {
				invertSampled = i
			}
		case InvertNotSampled:
			invertNotSampled = true
		case Dropped:
			// Only drop policies' Dropped verdicts count, as in contrib
			// where only they are sorted first; others read as not sampled.
			notSampled = true
		}
	}
	switch {
	case invertNotSampled:
		return Decision{Verdict: NotSampled}
	case sampled >= 0:
		th, rv = e.union(t, &set, th, rv)
		return e.keepSets(t, sampled, th, rv, &set, split)
	case invertSampled >= 0 && !notSampled:
		set.full = true
		th, rv = e.union(t, &set, otelsampling.AlwaysSampleThreshold, 0)
		return e.keepSets(t, invertSampled, th, rv, &set, split)
	}
	return Decision{Verdict: NotSampled}
}

// evaluate evaluates top-level policy i on t and adds its set to set (and
// split): the sets a composite states its kept set with (evaluateUnion;
// a concrete call, so that the sets stay on the stack), or its decision's.
func (e *Engine) evaluate(t *Trace, i int, set *keepSet, split *classSplit) Decision {
	if u := e.unions[i]; u != nil {
		var sets [unionSets]Decision
		d, n := u.evaluateUnion(t, &sets)
		if n >= 0 {
			for j := range n {
				set.add(sets[j])
				if split != nil {
					split.note(e.budget.classOf[i], &sets[j])
				}
			}
			return d
		}
		return e.noteSet(d, i, set, split)
	}
	return e.noteSet(e.policies[i].Evaluate(t), i, set, split)
}

// noteSet adds the set of d, policy i's decision, to set (and split).
func (e *Engine) noteSet(d Decision, i int, set *keepSet, split *classSplit) Decision {
	set.add(d)
	if split != nil && d.hasSet() {
		split.note(e.budget.classOf[i], &d)
	}
	return d
}

// union returns the threshold and randomness of a kept trace: the
// probability of the union of the sets with which the policies keep it,
// within those the drop policies let through (keepSet.mark), or th and rv,
// the most permissive of the policies that sampled it, when that
// probability is not known exactly (see docs/policies/counts.md).
func (e *Engine) union(t *Trace, set *keepSet, th otelsampling.Threshold, rv uint8) (otelsampling.Threshold, uint8) {
	if uth, urv, ok := set.mark(t, e.salts); ok {
		return uth, urv
	}
	return th, rv
}

// probe returns the most permissive of th and the thresholds with which
// the policies from the i-th on would sample t, evaluated as in Redecide:
// they learn nothing and charge nothing; it adds their sets to set (and
// split). With sample_on_first_match, the first policy that samples
// decides, but a later one that would keep t is part of t's probability
// of being kept.
func (e *Engine) probe(t *Trace, i int, th otelsampling.Threshold, rv uint8, set *keepSet, split *classSplit) (otelsampling.Threshold, uint8) {
	if th == otelsampling.AlwaysSampleThreshold {
		return th, rv // set is full already
	}
	redo, pending := t.redo, t.pending
	t.redo = true
	for ; i < len(e.policies); i++ {
		if e.drop[i] {
			continue
		}
		d := e.evaluate(t, i, set, split)
		if d.Verdict == Sampled && otelsampling.ThresholdLessThan(d.Threshold, th) {
			th, rv = d.Threshold, d.rv
		}
	}
	t.redo, t.pending = redo, pending
	return th, rv
}

// keep is the decision for a trace policy i keeps with conditional
// threshold th, decided on the randomness rv names (the trace's own for 0):
// the budget's share taken, scaled by the head threshold. A probability of
// 1 needs no randomness.
func (e *Engine) keep(t *Trace, i int, th otelsampling.Threshold, rv uint8) Decision {
	return e.keepSets(t, i, th, rv, nil, nil)
}

// keepSets is keep with the decision's sets: set, what the policies keep,
// and split, the same by budget class (nil without a budget, and in rule
// mode), from which the budget takes each class's share (budget.take).
func (e *Engine) keepSets(t *Trace, i int, th otelsampling.Threshold, rv uint8, set *keepSet, split *classSplit) Decision {
	if e.budget != nil {
		var ok bool
		if th, rv, ok = e.budget.take(t, i, th, rv, set, split, e.salts); !ok {
			return Decision{Verdict: NotSampled, Policy: e.names[i]}
		}
	}
	out := Decision{Verdict: Sampled, Threshold: t.Scale(th), Policy: e.names[i]}
	if out.Threshold != otelsampling.AlwaysSampleThreshold {
		out.rv = rv
	}
	return out
}

// randomness is the randomness rv names for t: derived from its salt, or
// t's own for 0, reflected with reflectRV.
func (e *Engine) randomness(t *Trace, rv uint8) otelsampling.Randomness {
	return decisionRandomness(t, rv, e.salts)
}

// decisionRandomness is the randomness rv names for t, salts being the
// engine's.
func decisionRandomness(t *Trace, rv uint8, salts []uint64) otelsampling.Randomness {
	if rv&derivedRV != 0 {
		return t.derived
	}
	rnd := t.Randomness
	if salt := rv & saltMask; salt != 0 {
		rnd = saltedRandomness(salts[salt-1], t.ID)
	}
	if rv&reflectRV != 0 {
		rnd = reflected(t, rnd)
	}
	return rnd
}

// Decision.rv's bits: saltMask names the salt (0 for t's own randomness);
// reflectRV marks a decision taken on the reflected randomness (not);
// derivedRV an engine's decision on the randomness it derived and stored
// in Trace.derived (keepSet.derive); unknownRV a refusal on randomness
// whose set the policy cannot state (and).
const (
	saltMask  uint8 = 0x1f
	unknownRV uint8 = 0x20
	derivedRV uint8 = 0x40
	reflectRV uint8 = 0x80
)

// reflected returns 2^56-1 + h - rnd, h being t's head threshold (0 without
// one): it maps the randomness values in [h, 2^56) (those a head sampler
// passed) onto themselves in reverse order, so that the traces with rnd
// below a threshold th get reflected values at or above 2^56 - (th - h).
// A randomness below h (the head sampler was not consistent) is reflected
// as if h were 0.
func reflected(t *Trace, rnd otelsampling.Randomness) otelsampling.Randomness {
	var h uint64
	if t.HasHead {
		h = t.HeadThreshold.Unsigned()
	}
	u := rnd.Unsigned()
	if u < h {
		h = 0
	}
	out, err := otelsampling.UnsignedToRandomness(otelsampling.MaxAdjustedCount - 1 + h - u)
	if err != nil {
		return rnd
	}
	return out
}

// Randomness returns the randomness d, a decision of e on t, was decided
// on when a policy derived it (probabilistic with hash_salt), and true;
// false when d was decided on the trace's own randomness (or has
// probability 1). Kept spans must carry a derived randomness as an
// explicit rv: Marker does that.
func (e *Engine) Randomness(t *Trace, d Decision) (otelsampling.Randomness, bool) {
	if d.rv == 0 {
		return otelsampling.Randomness{}, false
	}
	return e.randomness(t, d.rv), true
}

// Marker prepares the tracestate edits for d, a kept decision of e on t:
// its threshold and, when it was decided on a derived randomness, that
// randomness as an explicit rv.
func (e *Engine) Marker(t *Trace, d Decision) Marker {
	rnd, ok := e.Randomness(t, d)
	return newMarker(d.Threshold, rnd, ok)
}
