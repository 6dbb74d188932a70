package sampling

import (
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// Engine evaluates a policy list and combines the verdicts.
type Engine struct {
	policies  []evaluator
	names     []string
	drop      []bool // policies of type drop, evaluated first
	preds     []func(*SpanView) bool
	keys      []func(*SpanView) uint64
	needSpans bool
	budget    *budget // nil when off
	observers []observer
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
	e := &Engine{}
	b := &builder{}
	for i := range cfgs {
		c := &cfgs[i]
		f, ok := registry[c.Type]
		if !ok {
			return nil, fmt.Errorf("policies::%d::type: unknown policy type %q", i, c.Type)
		}
		settings := c.settings
		if settings == nil {
			settings = f.defaultConfig()
		}
		p, err := f.create(settings, b)
		if err != nil {
			return nil, fmt.Errorf("policies::%d (%s): %w", i, c.Name, err)
		}
		e.policies = append(e.policies, p)
		e.names = append(e.names, c.Name)
		e.drop = append(e.drop, c.Type == "drop")
		if o, ok := p.(decisionObserver); ok {
			e.observers = append(e.observers, observer{o, c.Name})
		}
	}
	e.preds, e.keys, e.needSpans = b.preds, b.keys, b.needSpans
	budget, err := newBudget(&o.budget, cfgs)
	if err != nil {
		return nil, err
	}
	e.budget = budget
	return e, nil
}

// NeedsView reports whether ObserveSpan has anything to do.
func (e *Engine) NeedsView() bool { return len(e.preds) > 0 || len(e.keys) > 0 }

// NeedsSpans reports whether Decide needs Trace.Spans.
func (e *Engine) NeedsSpans() bool { return e.needSpans }

// ObserveSpan updates t's span predicates and, for a root span, its keys.
func (e *Engine) ObserveSpan(t *Trace, v *SpanView) {
	for i, f := range e.preds {
		if bit := uint64(1) << i; t.Matched&bit == 0 && f(v) {
			t.Matched |= bit
		}
	}
	if v.Root {
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
// With a budget (WithBudget), a trace so kept with threshold q is then kept
// only if it passes the threshold of q·p_c, p_c being the probability of the
// class of the policy named; one the budget drops is NotSampled but still
// names that policy.
//
// A kept trace's threshold is then scaled by the head sampler's (Trace.Scale):
// head-sampled at p and kept at q, it is marked p·q.
//
// Policies that are DecisionObservers then observe the final decision.
func (e *Engine) Decide(t *Trace) Decision {
	d := e.decide(t)
	for _, o := range e.observers {
		o.Observe(t, d, d.Policy == o.name)
	}
	return d
}

func (e *Engine) decide(t *Trace) Decision {
	for i, p := range e.policies {
		if e.drop[i] && p.Evaluate(t).Verdict == Dropped {
			return Decision{Verdict: Dropped, Policy: e.names[i]}
		}
	}
	var (
		sampled, invertSampled = -1, -1
		invertNotSampled       bool
		notSampled             bool
		th                     = sampling.NeverSampleThreshold
	)
	for i, p := range e.policies {
		if e.drop[i] {
			continue
		}
		d := p.Evaluate(t)
		switch d.Verdict {
		case Sampled:
			if sampled < 0 {
				sampled = i
			}
			if sampling.ThresholdLessThan(d.Threshold, th) {
				th = d.Threshold
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
		return e.keep(t, sampled, th)
	case invertSampled >= 0 && !notSampled:
		return e.keep(t, invertSampled, sampling.AlwaysSampleThreshold)
	}
	return Decision{Verdict: NotSampled}
}

// keep is the decision for a trace policy i keeps with conditional
// threshold th: the budget's share taken, scaled by the head threshold.
func (e *Engine) keep(t *Trace, i int, th sampling.Threshold) Decision {
	if e.budget != nil {
		var ok bool
		if th, ok = e.budget.apply(t, i, th); !ok {
			return Decision{Verdict: NotSampled, Policy: e.names[i]}
		}
	}
	return Decision{Verdict: Sampled, Threshold: t.Scale(th), Policy: e.names[i]}
}
