package sampling

import (
	"encoding/binary"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSplitParts checks the parts of the kept set of [probabilistic 30,
// not(probabilistic 50), salted probabilistic 10], a class each, and a
// trace's rank within its part, against the measures worked out by hand:
// p keeps R in [0.7, 1), n R in [0, 0.5), salted what is left on R, [0.5,
// 0.7), when its own randomness is in [0.9, 1).
func TestSplitParts(t *testing.T) {
	const salt = 0x5eed
	salts := []uint64{salt}
	at := func(f float64) uint64 { return uint64(f * float64(top)) }
	thOf := func(p float64) otelsampling.Threshold {
		th, err := otelsampling.ProbabilityToThreshold(p)
		require.NoError(t, err)
		return th
	}
	// A trace with randomness r and an ID whose salted randomness is at
	// least (kept) or below (refused) 0.9.
	trace := func(r float64, saltedKept bool) *Trace {
		tr := &Trace{}
		for i := uint64(1); ; i++ {
			binary.BigEndian.PutUint64(tr.ID[:8], i)
			if (saltedRandomness(salt, tr.ID).Unsigned() >= at(0.9)) == saltedKept {
				break
			}
		}
		var err error
		tr.Randomness, err = otelsampling.UnsignedToRandomness(at(r))
		require.NoError(t, err)
		return tr
	}
	// split notes the three policies' decisions on tr, of classes classes.
	split := func(tr *Trace, classes ...int) *classSplit {
		var s classSplit
		for i, d := range []Decision{
			{Threshold: thOf(0.3)},                // p, on R
			{Threshold: thOf(0.5), rv: reflectRV}, // n, on R'
			{Threshold: thOf(0.1), rv: 1},         // salted
		} {
			if rnd := decisionRandomness(tr, d.rv, salts); d.Threshold.ShouldSample(rnd) {
				d.Verdict = Sampled
			}
			s.note(classes[i], &d)
		}
		return &s
	}
	tests := []struct {
		name       string
		r          float64
		saltedKept bool
		class      int
		rank       float64
	}{
		{"p's", 0.9, false, 0, 0.2},
		{"p's, salted too", 0.75, true, 0, 0.05},
		{"n's", 0.1, false, 1, 0.1},
		{"n's, salted too", 0.4, true, 1, 0.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := trace(tt.r, tt.saltedKept)
			var parts splitParts
			require.Equal(t, splitMany, parts.measure(tr, &keepSet{}, split(tr, 0, 1, 2), salts))
			assert.Equal(t, 3, parts.n)
			assert.Equal(t, [3]int{0, 1, 2}, [3]int(parts.class[:3]))
			for i, m := range []float64{0.3, 0.5, 0.1 * 0.2} {
				assert.InDelta(t, m, parts.m[i], 1e-9, "part of class %d", i)
			}
			assert.Equal(t, tt.class, parts.cx)
			assert.InDelta(t, tt.rank, parts.rank, 1e-9)
		})
	}
	// Salted's: R in [0.5, 0.7) (what p and n leave, 0.2) and the salted
	// randomness in [0.9, 1): ranked by the salted value, scaled by 0.2.
	tr := trace(0.6, true)
	var parts splitParts
	require.Equal(t, splitMany, parts.measure(tr, &keepSet{}, split(tr, 0, 1, 2), salts))
	assert.Equal(t, 2, parts.cx)
	u := float64(saltedRandomness(salt, tr.ID).Unsigned())/float64(top) - 0.9
	assert.InDelta(t, u*0.2, parts.rank, 1e-9)

	// Neither keeps it: not in any part.
	tr = trace(0.6, false)
	assert.Equal(t, splitUnknown, parts.measure(tr, &keepSet{}, split(tr, 0, 1, 2), salts))

	// Classes [p], [n, salted]: the second class's part is n's [0, 0.5)
	// whatever the salted randomness (0.5), and salted's [0.9, 1) where R is
	// in [0.5, 0.7), what neither p nor n keeps (0.2 × 0.1): 0.52. A trace
	// of the second kind ranks after all of the first.
	tr = trace(0.6, true)
	parts = splitParts{}
	require.Equal(t, splitMany, parts.measure(tr, &keepSet{}, split(tr, 0, 1, 1), salts))
	assert.Equal(t, 2, parts.n)
	assert.InDelta(t, 0.3, parts.m[0], 1e-9)
	assert.InDelta(t, 0.52, parts.m[1], 1e-9)
	assert.Equal(t, 1, parts.cx)
	u = float64(saltedRandomness(salt, tr.ID).Unsigned())/float64(top) - 0.9
	assert.InDelta(t, 0.5+u*0.2, parts.rank, 1e-9)

	// A drop's survivors, R below 0.6 (the complement of a refusal at 40 %
	// on the reflected randomness), cut p's part to [0.7, 1) ∩ ∅ and n's to
	// [0, 0.5); salted keeps, where R is in [0.5, 0.6), a tenth: 0.01.
	set := keepSet{}
	set.survive(Decision{Verdict: NotSampled, Threshold: thOf(0.4)})
	tr = trace(0.55, true)
	parts = splitParts{}
	require.Equal(t, splitMany, parts.measure(tr, &set, split(tr, 0, 1, 2), salts))
	for i, m := range []float64{0, 0.5, 0.01} {
		assert.InDelta(t, m, parts.m[i], 1e-9, "part of class %d", i)
	}
	assert.Equal(t, 2, parts.cx)
	u = float64(saltedRandomness(salt, tr.ID).Unsigned())/float64(top) - 0.9
	assert.InDelta(t, u*0.1, parts.rank, 1e-9)
}
