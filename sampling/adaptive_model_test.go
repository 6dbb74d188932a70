package sampling

// Internal tests of the adaptive policy's model: the histogram, its decay,
// the striped key table and its eviction, and the controller without an
// engine. The policy's behaviour is tested from outside in adaptive_test.go.

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resolution is the widest ratio of a bucket's upper to its lower bound.
const resolution = 1.25

func TestBucketOf(t *testing.T) {
	t.Run("bounds", func(t *testing.T) {
		for i := 1; i < numBuckets; i++ {
			lo, hi := bucketBounds[i], bucketBounds[i+1]
			require.Less(t, lo, hi)
			assert.LessOrEqual(t, hi/lo, resolution, "bucket %d", i)
			assert.Equal(t, i, bucketOf(uint64(lo)), "lower bound of %d", i)
			assert.Equal(t, i, bucketOf(uint64(hi)-1), "just under the upper bound of %d", i)
		}
	})
	t.Run("edges", func(t *testing.T) {
		assert.Equal(t, 0, bucketOf(0))
		assert.Equal(t, 0, bucketOf(1023))
		assert.Equal(t, 0, bucketOf(1024))
		assert.Equal(t, 1, bucketOf(1280))
		assert.Equal(t, 4, bucketOf(2048))
		assert.Equal(t, numBuckets-1, bucketOf(1<<(minOctave+octaves)))
		assert.Equal(t, numBuckets-1, bucketOf(math.MaxUint64))
	})
	t.Run("random durations", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 10000 {
			d := rng.Uint64N(1 << 41)
			i := bucketOf(d)
			if i > 0 {
				assert.LessOrEqual(t, bucketBounds[i], float64(d))
			}
			assert.Greater(t, bucketBounds[i+1], float64(d))
		}
	})
}

var testDecay = decay{invLong: 1 / float64(time.Minute), invShort: 1 / float64(10*time.Second)}

func TestQuantileKnownDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dists := []struct {
		name string
		draw func() float64 // ns
	}{
		{"uniform 1-100ms", func() float64 { return 1e6 + 99e6*rng.Float64() }},
		{"log-normal median 50ms σ0.5", func() float64 { return 50e6 * math.Exp(0.5*rng.NormFloat64()) }},
		{"log-normal median 2ms σ1.5", func() float64 { return 2e6 * math.Exp(1.5*rng.NormFloat64()) }},
		{"exponential mean 300µs", func() float64 { return 300e3 * rng.ExpFloat64() }},
		{"constant 7ms", func() float64 { return 7e6 }},
	}
	for _, dist := range dists {
		t.Run(dist.name, func(t *testing.T) {
			var k keyState
			sample := make([]float64, 20000)
			for i := range sample {
				sample[i] = dist.draw()
				k.observe(testDecay, 0, uint64(sample[i]), false)
			}
			slices.Sort(sample)
			for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
				want := sample[int(q*float64(len(sample)))]
				got := k.quantile(q)
				assert.InEpsilon(t, want, got, resolution-1, "q=%v: want %v within bucket resolution, got %v", q, want, got)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		var k keyState
		assert.Zero(t, k.quantile(0.5))
	})
}

func TestModelDecay(t *testing.T) {
	const h = int64(time.Minute)
	t.Run("counts halve each half-life", func(t *testing.T) {
		k := keyState{}
		for range 1000 {
			k.observe(testDecay, 0, 10e6, false)
		}
		for i, want := range []float64{1000, 500, 250, 125} {
			total, hist, _ := k.counts(testDecay, int64(i)*h)
			assert.InDelta(t, want, total, 1e-6, "after %d half-lives", i)
			assert.InDelta(t, want, hist, 1e-6, "after %d half-lives", i)
		}
		// The short window has a 10 s half-life: 6 of them in a minute.
		_, _, short := k.counts(testDecay, h)
		assert.InDelta(t, 1000/64.0, short, 1e-9)
	})
	t.Run("recent observations weigh more", func(t *testing.T) {
		var k keyState
		for range 1000 {
			k.observe(testDecay, 0, 10e6, false) // 10 ms at t=0
		}
		for range 1000 {
			k.observe(testDecay, h, 100e6, false) // 100 ms one half-life later
		}
		total, _, _ := k.counts(testDecay, h)
		assert.InDelta(t, 1500, total, 1e-6)
		// 500 old against 1000 new: the median is among the new ones,
		// the 30th percentile among the old.
		assert.InEpsilon(t, 100e6, k.quantile(0.5), resolution-1)
		assert.InEpsilon(t, 10e6, k.quantile(0.3), resolution-1)
	})
	t.Run("landmark moves far beyond maxExponent", func(t *testing.T) {
		var k keyState
		// One observation a second for two hours: 720 short half-lives.
		for s := range int64(7200) {
			k.observe(testDecay, s*int64(time.Second), 10e6, s%10 == 0)
		}
		now := int64(7199 * time.Second)
		total, hist, short := k.counts(testDecay, now)
		// Steady state of a rate r under half-life H: about r·H/ln 2.
		assert.InEpsilon(t, 60/math.Ln2, total, 0.02)
		assert.InEpsilon(t, 60/math.Ln2, hist, 0.02)
		assert.InEpsilon(t, 10/math.Ln2, short, 0.06)
		assert.InEpsilon(t, 0.1, k.errLong/k.total, 0.1)
		assert.False(t, math.IsInf(k.total, 0) || math.IsNaN(k.total))
		assert.InEpsilon(t, 10e6, k.quantile(0.5), resolution-1)
	})
	t.Run("time never runs backwards for a key", func(t *testing.T) {
		k := keyState{epoch: h}
		k.observe(testDecay, 0, 10e6, false) // stamped before the landmark
		total, _, _ := k.counts(testDecay, 0)
		assert.InDelta(t, 1, total, 1e-12)
	})
}

func TestStripeCount(t *testing.T) {
	for _, tt := range []struct{ maxKeys, stripes int }{
		{1, 1}, {31, 1}, {32, 2}, {100, 4}, {128, 8}, {1024, 64}, {4096, 64}, {1 << 16, 64},
	} {
		n := stripeCount(tt.maxKeys)
		assert.Equal(t, tt.stripes, n, "max_keys %d", tt.maxKeys)
		assert.GreaterOrEqual(t, tt.maxKeys/n, min(tt.maxKeys, 16), "share of a stripe")
		tab := newKeyTable(tt.maxKeys, testDecay)
		capacity := 0
		for i := range tab.stripes {
			capacity += cap(tab.stripes[i].data.keys)
		}
		assert.GreaterOrEqual(t, capacity, tt.maxKeys, "max_keys %d", tt.maxKeys)
	}
}

// observeKey adds n observations of key at now to tab, as Evaluate does.
func observeKey(tab *keyTable, key uint64, n int, now int64) (created bool) {
	s := tab.stripe(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		k, c := tab.lookup(&s.data, key, now)
		created = created || c
		k.observe(tab.decay, now, 1e6, false)
	}
	return created
}

func (t *keyTable) has(key uint64) bool {
	_, ok := t.stripe(key).data.index[key]
	return ok
}

func (t *keyTable) held() int {
	n := 0
	for i := range t.stripes {
		n += len(t.stripes[i].data.keys)
	}
	return n
}

func TestKeyTableEviction(t *testing.T) {
	const h = int64(time.Minute)
	type obs struct {
		key uint64
		n   int
		at  int64
	}
	fill := func(t *testing.T, maxKeys int, keys ...obs) *keyTable {
		t.Helper()
		tab := newKeyTable(maxKeys, testDecay)
		for _, o := range keys {
			observeKey(tab, o.key, o.n, o.at)
		}
		return tab
	}

	t.Run("the key with the smallest decayed count goes", func(t *testing.T) {
		tab := fill(t, 4, obs{1, 10, 0}, obs{2, 5, 0}, obs{3, 1, 0}, obs{4, 3, 0})
		require.True(t, observeKey(tab, 5, 1, 0))
		assert.False(t, tab.has(3))
		for _, key := range []uint64{1, 2, 4, 5} {
			assert.True(t, tab.has(key), "key %d", key)
		}
		assert.Equal(t, 4, tab.held())
		assert.Equal(t, int64(4), tab.count.Load())
		assert.Len(t, tab.stripes[0].data.index, 4)
	})
	t.Run("decay counts: an old busy key goes before a recent quiet one", func(t *testing.T) {
		// Key 1: 100 observations ten half-lives ago (0.1 now); key 2: 1 now.
		tab := fill(t, 2, obs{1, 100, 0}, obs{2, 1, 10 * h})
		observeKey(tab, 3, 1, 10*h)
		assert.False(t, tab.has(1))
		assert.True(t, tab.has(2))
	})
	t.Run("equal counts: the least recently seen goes", func(t *testing.T) {
		tab := fill(t, 2, obs{1, 1, 0}, obs{2, 1, 0})
		s := &tab.stripes[0].data
		s.keys[s.index[1]].lastSeen = 5
		s.keys[s.index[2]].lastSeen = 3
		observeKey(tab, 3, 1, 0)
		assert.True(t, tab.has(1))
		assert.False(t, tab.has(2))
	})
	t.Run("a burst of one-off keys evicts its own kind", func(t *testing.T) {
		tab := fill(t, 4, obs{1, 50, 0}, obs{2, 50, 0}, obs{3, 50, 0}, obs{4, 1, 0})
		for key := uint64(100); key < 200; key++ {
			require.True(t, observeKey(tab, key, 1, 0))
		}
		for _, key := range []uint64{1, 2, 3, 199} {
			assert.True(t, tab.has(key), "key %d", key)
		}
		assert.Equal(t, 4, tab.held())
	})
	t.Run("an evicted key comes back new", func(t *testing.T) {
		tab := fill(t, 2, obs{1, 5, 0}, obs{2, 9, 0})
		observeKey(tab, 3, 1, 0)
		require.False(t, tab.has(1))
		k, created := tab.lookup(&tab.stripe(1).data, 1, 0)
		assert.True(t, created)
		total, _, _ := k.counts(testDecay, 0)
		assert.Zero(t, total)
	})
	t.Run("the cap holds over all stripes", func(t *testing.T) {
		const maxKeys = 1000
		tab := newKeyTable(maxKeys, testDecay)
		require.Len(t, tab.stripes, 32)
		rng := rand.New(rand.NewPCG(5, 6))
		hot := make([]uint64, maxKeys/2)
		for i := range hot {
			hot[i] = rng.Uint64()
			observeKey(tab, hot[i], 10, 0)
		}
		// Up to the cap, no key is evicted.
		for range maxKeys / 2 {
			observeKey(tab, rng.Uint64(), 1, 0)
		}
		assert.Equal(t, maxKeys, tab.held())
		// Past it, each new key evicts a one-off key, never a hot one.
		for range 5000 {
			observeKey(tab, rng.Uint64(), 1, 0)
		}
		assert.Equal(t, maxKeys, tab.held())
		assert.Equal(t, int64(maxKeys), tab.count.Load())
		for _, key := range hot {
			require.True(t, tab.has(key))
		}
	})
}

func TestLevels(t *testing.T) {
	assert.Equal(t, int32(0), levelOf(1))
	assert.Equal(t, int32(0), levelOf(3))
	assert.Equal(t, int32(8), levelOf(0.5))
	assert.Equal(t, int32(9), levelOf(0.49))
	assert.Equal(t, int32(maxLevel), levelOf(0))
	assert.Equal(t, int32(maxLevel), levelOf(1e-30))
	assert.Equal(t, int32(maxLevel), levelOf(math.NaN()))
	for _, p := range []float64{0.9, 0.5, 0.3, 0.01, 1e-6} {
		got := levelThresholds[levelOf(p)].Probability()
		assert.LessOrEqual(t, got, p, "rounded down")
		assert.Greater(t, got, p/math.Exp2(1.0/levelsPerHalving)-1e-15, "by less than a level")
	}
}

// Without an engine reporting decisions (a sub-policy), the probability
// stays 1 however many anomalies there are.
func TestAdaptiveWithoutObserver(t *testing.T) {
	c := defaultAdaptiveConfig()
	c.RareKeyWarmup = 0
	p, err := newAdaptive(c, &Builder{})
	require.NoError(t, err)
	a := p.(*adaptive)
	for i := range 10000 {
		tr := &Trace{Now: int64(i) * int64(time.Millisecond), KeySet: 1, Keys: [MaxKeys]uint64{uint64(i) * 0x9e3779b97f4a7c15}}
		require.True(t, a.Evaluate(tr).Keep(), "trace %d of a new key", i)
	}
	assert.Equal(t, 1.0, a.controller.probability())
}

// robustQuantile is the quantile of the durations below Tukey's fence:
// the same as a plain scan computes it, and deaf to a far outlier.
func TestRobustQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var k keyState
	for range 200 {
		k.add(1, 1, 0, uint64(10e6*math.Exp(0.4*rng.NormFloat64())), false)
	}
	clean := k.quantile(0.95)
	k.add(1, 1, 0, uint64(10e9), false)
	k.add(1, 1, 0, uint64(5e9), false)
	k.add(1, 1, 0, uint64(2e9), false)
	fence := k.quantile(0.75) * math.Pow(k.quantile(0.75)/k.quantile(0.25), tukeyK)
	want := k.quantileAt(0.95 * k.massBelow(fence))
	assert.InEpsilon(t, want, k.robustQuantile(0.95), 1e-9)
	assert.InEpsilon(t, clean, k.robustQuantile(0.95), 0.05, "outliers do not lift the p95")
	assert.Greater(t, k.quantile(0.99), 10*clean, "they lift the plain p99")
}
