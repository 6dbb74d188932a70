package sampling

import (
	"math"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// Test hooks: the extension API under exported names for the external
// tests (fakes with fixed verdicts, composed by hand), and accessors that
// only tests need.

// Policy is the policy interface, for fakes.
type Policy = evaluator

// Builder is the policy builder.
type Builder = builder

// SampledAt is a Sampled decision with threshold th.
func SampledAt(th otelsampling.Threshold) Decision { return sampledAt(th) }

// Invert is an invert_match filter's decision, as contrib's filters give
// it: InvertSampled when the filter found no match, InvertNotSampled when
// it did.
func Invert(noMatch bool) Decision {
	if noMatch {
		return Decision{Verdict: InvertSampled, Threshold: otelsampling.AlwaysSampleThreshold}
	}
	return Decision{Verdict: InvertNotSampled}
}

// Reflected is d decided on the reflected randomness, as not answers.
func Reflected(d Decision) Decision {
	d.rv |= reflectRV
	return d
}

// Drop is a Dropped decision.
func Drop() Decision { return Decision{Verdict: Dropped} }

// Names lists the policy names in evaluation order.
func (e *Engine) Names() []string { return e.names }

// Settings returns the type's settings (nil before Unmarshal or Validate for
// an unknown type).
func (p *PolicyConfig) Settings() any { return p.settings }

// Threshold is the marker's threshold.
func (m Marker) Threshold() otelsampling.Threshold { return m.th }

// ScopeAttr finds the instrumentation scope attribute key.
func (v *SpanView) ScopeAttr(key string) (Value, bool) {
	return findAttr(v.Scope, scopeAttrsField, key)
}

// observe adds one trace to a key: its duration (0 for none) and whether it
// erred.
func (k *keyState) observe(d decay, now int64, dur uint64, isErr bool) {
	wl, ws := d.weights(k, now)
	k.add(wl, ws, now, dur, isErr)
}

// counts returns the decayed number of observations, of observations with a
// duration, and of short-window observations, at now.
func (k *keyState) counts(d decay, now int64) (total, hist, short float64) {
	el, es := d.exponents(k, now)
	wl, ws := math.Exp2(-el), math.Exp2(-es)
	return k.total * wl, k.histTotal * wl, k.totShort * ws
}

// probability is the current probability of an anomaly.
func (c *controller) probability() float64 {
	return c.threshold().Probability()
}

// BuildPolicy validates and builds one policy outside an engine, with the
// builder it registered its needs with.
func BuildPolicy(c *PolicyConfig) (Policy, *Builder, error) {
	b := &Builder{}
	p, err := b.Policy(c)
	return p, b, err
}

// NeedsSpans reports whether a policy built with b asked for pdata spans.
func (b *Builder) NeedsSpans() bool { return b.needSpans }

// AndOf, NotOf and DropOf compose given policies.
func AndOf(subs ...Policy) Policy  { return and{subs: subs} }
func NotOf(sub Policy) Policy      { return not{sub: sub} }
func DropOf(subs ...Policy) Policy { return drop{subs: subs} }

// CompositeOf composes subs with the given allocations, in spans per second.
func CompositeOf(maxTotal int64, subs []Policy, alloc []int64) Policy {
	p := &composite{maxTotal: maxTotal, subs: make([]compositeSub, len(subs))}
	for i := range subs {
		p.subs[i] = compositeSub{policy: subs[i], allocated: alloc[i]}
	}
	return p
}

// CompositeAllocations returns a built composite's allocations.
func CompositeAllocations(p Policy) []int64 {
	c := p.(*composite)
	out := make([]int64, len(c.subs))
	for i := range c.subs {
		out[i] = c.subs[i].allocated
	}
	return out
}

// Settings returns the sampler's settings.
func (s *SamplerConfig) Settings() any { return s.settings }

// ModelKeyBytes is one key's size in an encoded adaptive model.
const ModelKeyBytes = keyBytes
