package sampling

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedSet is a sub-policy answering d whatever the trace.
type fixedSet Decision

func (f fixedSet) Evaluate(*Trace) Decision { return Decision(f) }

// offerOf builds a consistent composite over subs with the given share
// probabilities (their demand set so that p = rate/demand) and returns its
// offer for a trace without a head.
func offerOf(t *testing.T, subs []Decision, probs []float64) compositeOffer {
	t.Helper()
	p := &composite{total: newRateShare(1, 1), salts: []uint64{1, 2, 1}}
	for i, d := range subs {
		s := newRateShare(1, 1)
		s.tokens, s.demand, s.last = 0, 1/probs[i], t0 // p = 1/demand
		p.subs = append(p.subs, compositeSub{policy: fixedSet(d), share: s})
	}
	var o compositeOffer
	p.offer(&Trace{Now: t0, SpanCount: 1}, false, &o)
	return o
}

func thAt(t *testing.T, q float64) otelsampling.Threshold {
	t.Helper()
	th, err := otelsampling.ProbabilityToThreshold(q)
	require.NoError(t, err)
	return th
}

// TestCompositeOfferParts: K's measure P and each allocation's part, for
// sub-policy sets on one randomness (nested, stacked smallest first), on
// its reflection, whole, and on independent salts.
func TestCompositeOfferParts(t *testing.T) {
	up := func(q float64) Decision { return Decision{Verdict: Sampled, Threshold: thAt(t, q)} }
	refusedUp := func(q float64) Decision { return Decision{Threshold: thAt(t, q)} }
	down := func(q float64) Decision { return Decision{Verdict: Sampled, Threshold: thAt(t, q), rv: reflectRV} }
	salted := func(q float64, salt uint8) Decision { return Decision{Threshold: thAt(t, q), rv: salt} }
	whole := Decision{Verdict: Sampled, Threshold: otelsampling.AlwaysSampleThreshold}
	none := Decision{}
	tests := []struct {
		name  string
		subs  []Decision
		probs []float64
		p     float64
		parts []float64
	}{
		// Nothing binds: the union, as contrib's first match.
		{"two p50 loose", []Decision{up(0.5), refusedUp(0.5)}, []float64{1, 1}, 0.5, []float64{0.5, 0}},
		// Both bind: the offers add up.
		{"two p50 binding", []Decision{up(0.5), up(0.5)}, []float64{0.2, 0.4}, 0.3, []float64{0.1, 0.2}},
		// p10 stacks first; p50 fills up to its own set.
		{"p50 and p10", []Decision{up(0.5), up(0.1)}, []float64{0.9, 1}, 0.5, []float64{0.4, 0.1}},
		// A refusal whatever the randomness offers nothing.
		{"refused", []Decision{none, up(0.2)}, []float64{1, 0.5}, 0.1, []float64{0, 0.1}},
		// Whole sets fill below the stack, capped at 1 in proportion.
		{"whole", []Decision{up(0.5), whole, whole}, []float64{0.5, 0.5, 1}, 1, []float64{0.25, 0.25, 0.5}},
		{"whole loose", []Decision{up(0.5), whole}, []float64{0.2, 0.3}, 0.4, []float64{0.1, 0.3}},
		// Reflection: from the bottom; the two stacks meet at 1.
		{"up and down", []Decision{up(0.3), down(0.5)}, []float64{1, 0.5}, 0.55, []float64{0.3, 0.25}},
		{"up and down meet", []Decision{up(0.6), down(0.7)}, []float64{1, 1}, 1, []float64{0.6, 0.4}},
		// Independent salts: 1 − Π(1 − m); salt 3 is salt 1's state.
		{"salts", []Decision{salted(0.5, 1), salted(0.5, 2)}, []float64{1, 1}, 0.75, []float64{0.5, 0.25}},
		{"same salt", []Decision{salted(0.5, 1), salted(0.2, 3)}, []float64{0.2, 1}, 0.3, []float64{0.1, 0.2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := offerOf(t, tt.subs, tt.probs)
			assert.InDelta(t, tt.p, o.p, 1e-9, "P")
			sum := 0.0
			for i, want := range tt.parts {
				assert.InDelta(t, want, o.subs[i].part, 1e-9, "part %d", i)
				sum += o.subs[i].part
			}
			assert.InDelta(t, o.p, sum, 1e-9, "the parts add up to P")
		})
	}
}

// TestCompositeDecideSets: a composite whose K is one threshold's set
// answers on that randomness and its refusal carries the threshold; a K of
// several intervals is decided on the derived randomness R*, uniform over
// K, and its refusal is unknownRV.
func TestCompositeDecideSets(t *testing.T) {
	e, err := NewEngine([]PolicyConfig{NewPolicyConfig("c", "composite", &CompositeConfig{
		MaxTotalSpansPerSecond: 1_000_000,
		SubPolicies: []PolicyConfig{
			NewPolicyConfig("p", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 20}),
			NewPolicyConfig("s", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 10, HashSalt: "s"}),
		},
	})})
	require.NoError(t, err)
	c := e.policies[0].(*composite)
	var kept, refused int
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20_000 {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		tr := &Trace{Now: t0 + int64(i), SpanCount: 1}
		tr.SetIdentity(id, nil)
		d := c.Evaluate(tr)
		switch d.Verdict {
		case Sampled:
			kept++
			require.Equal(t, derivedRV, d.rv)
			require.True(t, d.Threshold.ShouldSample(tr.derived))
			assert.InDelta(t, 1-0.8*0.9, d.Threshold.Probability(), 1e-9)
		default:
			refused++
			require.Equal(t, unknownRV, d.rv)
		}
	}
	frac := float64(kept) / 20_000
	assert.InDelta(t, 0.28, frac, 4*math.Sqrt(0.28*0.72/20_000))

	// Over the trace's randomness alone: its threshold, kept or not.
	e, err = NewEngine([]PolicyConfig{NewPolicyConfig("c", "composite", &CompositeConfig{
		MaxTotalSpansPerSecond: 1_000_000,
		SubPolicies: []PolicyConfig{
			NewPolicyConfig("p", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 20}),
			NewPolicyConfig("q", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 50}),
		},
	})})
	require.NoError(t, err)
	for _, rnd := range []uint64{0, 1 << 55, 1<<56 - 1} {
		tr := &Trace{Now: t0, SpanCount: 1}
		tr.Randomness, _ = otelsampling.UnsignedToRandomness(rnd)
		d := e.policies[0].Evaluate(tr)
		assert.Equal(t, thAt(t, 0.5), d.Threshold, "randomness %x", rnd)
		assert.Equal(t, rnd >= 1<<55, d.Keep(), "randomness %x", rnd)
		assert.Zero(t, d.rv)
	}
}

// TestAndSet: and's refusal on randomness states the intersection of its
// sub-policies' sets, for a composite (set) and for the engine (Evaluate);
// the sub-policies after the refusing one learn and charge nothing.
func TestAndSet(t *testing.T) {
	limit := NewPolicyConfig("rate", "rate_limiting", &RateLimitingConfig{SpansPerSecond: 10, BurstCapacity: 10})
	cfg := NewPolicyConfig("and", "and", &AndConfig{SubPolicies: []PolicyConfig{
		NewPolicyConfig("p", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 50}),
		NewPolicyConfig("q", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 30}),
		limit,
	}})
	e, err := NewEngine([]PolicyConfig{cfg})
	require.NoError(t, err)
	a := e.policies[0].(and)
	share := a.subs[2].(*limiter).share

	low := &Trace{Now: t0, SpanCount: 1} // randomness 0: refused by p
	d := a.set(low)
	assert.Equal(t, NotSampled, d.Verdict)
	assert.Equal(t, thAt(t, 0.3), d.Threshold, "the strictest threshold")
	assert.Zero(t, share.demand, "the limiter after the refusal learned nothing")
	assert.False(t, low.redo)
	assert.Zero(t, low.pending)
	assert.Equal(t, d, a.Evaluate(low), "and's own Evaluate states it too")
	assert.Zero(t, share.demand, "the limiter after the refusal learned nothing")
	assert.False(t, low.redo)
	assert.Zero(t, low.pending)

	high := &Trace{Now: t0, SpanCount: 1}
	high.Randomness, _ = otelsampling.UnsignedToRandomness(1<<56 - 1)
	d = a.set(high)
	assert.Equal(t, Sampled, d.Verdict)
	assert.Positive(t, share.demand, "kept: evaluated as Evaluate does")

	// Sub-policies on different randomness: no set is stated.
	mixed, err := NewEngine([]PolicyConfig{NewPolicyConfig("and", "and", &AndConfig{SubPolicies: []PolicyConfig{
		NewPolicyConfig("p", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 50}),
		NewPolicyConfig("n", "not", &NotConfig{SubPolicy: NewPolicyConfig("q", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 30})}),
	}})})
	require.NoError(t, err)
	assert.Equal(t, Decision{}, mixed.policies[0].(and).set(&Trace{Now: t0, SpanCount: 1}))
	assert.Equal(t, Decision{rv: unknownRV}, mixed.policies[0].Evaluate(&Trace{Now: t0, SpanCount: 1}), "the engine is told the set is not known")
}

// TestCompositeRedecideCharges: in mode consistent, a trace kept at Decide
// is not charged again by Redecide; one refused at Decide and kept by
// Redecide is charged once.
func TestCompositeRedecideCharges(t *testing.T) {
	build := func() *Engine {
		e, err := NewEngine([]PolicyConfig{NewPolicyConfig("c", "composite", &CompositeConfig{
			MaxTotalSpansPerSecond: 100,
			SubPolicies: []PolicyConfig{
				NewPolicyConfig("errors", "status_code", &StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
				NewPolicyConfig("p", "probabilistic", &ProbabilisticConfig{SamplingPercentage: 50}),
			},
		})})
		require.NoError(t, err)
		return e
	}
	state := func(e *Engine) []shareState {
		c := e.policies[0].(*composite)
		out := []shareState{{c.total.tokens, c.total.demand, c.total.last}}
		for _, s := range c.subs {
			out = append(out, shareState{s.share.tokens, s.share.demand, s.share.last})
		}
		return out
	}
	once, twice := build(), build()
	kept := redecideTrace(t0, 4, 10*ms, 0)
	require.True(t, once.Decide(redecideTrace(t0, 4, 10*ms, 0)).Keep())
	require.True(t, twice.Decide(kept).Keep())
	require.True(t, twice.Redecide(kept).Keep())
	assert.Equal(t, state(once), state(twice), "kept at Decide: not charged again")

	// Randomness 0: p refuses, errors does not apply; a late error keeps it.
	refusedOnce, refusedTwice := &Trace{Now: t0 + sec, SpanCount: 4, StatusMask: StatusOKBit}, &Trace{Now: t0 + sec, SpanCount: 4, StatusMask: StatusOKBit}
	require.False(t, once.Decide(refusedOnce).Keep())
	require.False(t, twice.Decide(refusedTwice).Keep())
	refusedTwice.StatusMask |= StatusErrorBit
	require.True(t, twice.Redecide(refusedTwice).Keep())
	once.policies[0].(*composite).charge(refusedTwice)
	assert.Equal(t, state(once), state(twice), "charged once")
	twice.Redecide(refusedTwice)
	assert.Equal(t, state(once), state(twice), "not twice")
}

// TestCompositeTooManySalts: a composite in mode consistent combines at
// most maxOfferBases-1 salts.
func TestCompositeTooManySalts(t *testing.T) {
	var subs []PolicyConfig
	for i := range maxOfferBases {
		subs = append(subs, NewPolicyConfig(fmt.Sprint("s", i), "probabilistic", &ProbabilisticConfig{SamplingPercentage: 10, HashSalt: fmt.Sprint(i)}))
	}
	cfg := NewPolicyConfig("c", "composite", &CompositeConfig{MaxTotalSpansPerSecond: 10, SubPolicies: subs})
	_, err := NewEngine([]PolicyConfig{cfg})
	require.EqualError(t, err, "policies::0 (c): composite_sub_policy: at most 7 distinct hash_salt values in mode consistent, got 8")
	subs[0].settings.(*ProbabilisticConfig).HashSalt = "1" // seven distinct
	_, err = NewEngine([]PolicyConfig{cfg})
	require.NoError(t, err)
}

// TestUnionDerived: the engine keeps a composite's derived randomness when
// it is the one set on randomness, and keeps its most permissive rule
// beside another.
func TestUnionDerived(t *testing.T) {
	th := thAt(t, 0.3)
	var k keepSet
	k.add(Decision{Verdict: Sampled, Threshold: th, rv: derivedRV})
	k.add(Decision{}) // a deterministic refusal
	got, rv, ok := k.mark(&Trace{}, nil)
	assert.True(t, ok)
	assert.Equal(t, th, got)
	assert.Equal(t, derivedRV, rv)

	k = keepSet{}
	k.add(Decision{Verdict: Sampled, Threshold: th, rv: derivedRV})
	k.add(Decision{Threshold: thAt(t, 0.5)})
	_, _, ok = k.mark(&Trace{}, nil)
	assert.False(t, ok, "beside a set on the trace's randomness: not exact")

	k = keepSet{}
	k.add(Decision{Verdict: Sampled, Threshold: th, rv: derivedRV})
	k.add(keepAlways)
	got, _, ok = k.mark(&Trace{}, nil)
	assert.True(t, ok)
	assert.Equal(t, otelsampling.AlwaysSampleThreshold, got, "another policy keeps it whatever the randomness")
}
