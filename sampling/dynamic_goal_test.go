package sampling_test

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// poisson appends the arrivals of key k, a Poisson process of perSec
// traces per second, over [from, to).
func poisson(evs []event, rng *rand.Rand, k int64, perSec float64, from, to int64) []event {
	for now := from + int64(rng.ExpFloat64()/perSec*float64(sec)); now < to; now += int64(rng.ExpFloat64() / perSec * float64(sec)) {
		evs = append(evs, event{key: k, now: now})
	}
	return evs
}

func byTime(evs []event) []event {
	slices.SortFunc(evs, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.now, b.now), cmp.Compare(a.key, b.key))
	})
	return evs
}

// goalCase is a workload, in traces of each key over [0, warmUp+measure).
type goalCase struct {
	name     string
	workload func(rng *rand.Rand, end int64) []event
}

const (
	goalWarmUp  = 10 * sec // ten intervals of 1 s
	goalMeasure = 60 * sec
	goalPerSec  = 10.0
)

var goalCases = []goalCase{
	{"100 keys each about once a second", func(rng *rand.Rand, end int64) []event {
		var evs []event
		for k := range int64(100) {
			evs = poisson(evs, rng, k, 1, 0, end)
		}
		return evs
	}},
	{"1000 keys each about once every 10 s", func(rng *rand.Rand, end int64) []event {
		var evs []event
		for k := range int64(1000) {
			evs = poisson(evs, rng, k, 0.1, 0, end)
		}
		return evs
	}},
	{"3 hot keys and 200 rare ones", func(rng *rand.Rand, end int64) []event {
		var evs []event
		for k := range int64(3) {
			evs = poisson(evs, rng, 1_000_000+k, 300, 0, end)
		}
		for k := range int64(200) {
			evs = poisson(evs, rng, k, 0.5, 0, end)
		}
		return evs
	}},
	// 300 keys at 2/s, each active 20 s out of every 60 (staggered: about
	// 100 at a time), silent the other 40 s.
	{"keys that come and go", func(rng *rand.Rand, end int64) []event {
		var evs []event
		for k := range int64(300) {
			for on := -k * 60 * sec / 300; on < end; on += 60 * sec {
				evs = poisson(evs, rng, k, 2, max(0, on), min(end, on+20*sec))
			}
		}
		return evs
	}},
	// Keys that each live 20 s at 1/s and never come back: about 100 alive
	// at a time, 5 new ones a second.
	{"5 new keys a second", func(rng *rand.Rand, end int64) []event {
		var evs []event
		for k := int64(0); k*sec/5 < end; k++ {
			born := k*sec/5 - 20*sec
			evs = poisson(evs, rng, k, 1, max(0, born), min(end, born+20*sec))
		}
		return evs
	}},
}

// TestDynamicGoal: the kept rate holds near the goal (10 traces/s, 1 s
// intervals) after ten intervals of warm-up, over a minute, within 20 %,
// whatever the number of keys and their churn; and each kept trace still
// carries its key's probability (the adjusted counts of every trace, warm-up
// included, within 4σ of the truth, per key class).
func TestDynamicGoal(t *testing.T) {
	for i, tc := range goalCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, dynPolicy("dyn", sampling.DynamicConfig{
				GoalTracesPerSecond: goalPerSec, AdjustmentInterval: time.Second,
			}))
			rng := rand.New(rand.NewPCG(uint64(i), 77))
			evs := byTime(tc.workload(rng, goalWarmUp+goalMeasure))
			var all, hot, rare estimate
			kept := 0
			for _, ev := range evs {
				d := e.Decide(dynKeyed(rng, ev.key, ev.now))
				all.add(d)
				if ev.key >= 1_000_000 {
					hot.add(d)
				} else {
					rare.add(d)
				}
				if d.Keep() && ev.now >= goalWarmUp {
					kept++
				}
			}
			rate := float64(kept) / float64(goalMeasure/sec)
			t.Logf("%d traces, kept %.1f/s for a goal of %.0f/s", len(evs), rate, goalPerSec)
			assert.InEpsilon(t, goalPerSec, rate, 0.2, "kept %.1f/s", rate)
			all.check(t, "all")
			if hot.truth > 0 {
				hot.check(t, "hot")
				rare.check(t, "rare")
			}
		})
	}
}

// TestDynamicNewKey: among many rare keys sampled down to the goal, a key
// never seen before has its first trace kept, whatever its randomness: a
// new key is what a user looks for first. Its later traces, until the
// next adjustment, get the rarest key's probability; and the first traces
// kept whole are at most half the goal per interval (5 here), so that a
// key made of a request ID does not keep every trace.
func TestDynamicNewKey(t *testing.T) {
	e := newEngine(t, dynPolicy("dyn", sampling.DynamicConfig{
		GoalTracesPerSecond: goalPerSec, AdjustmentInterval: time.Second,
	}))
	rng := rand.New(rand.NewPCG(3, 4))
	var evs []event
	for k := range int64(100) {
		evs = poisson(evs, rng, k, 1, 0, 20*sec)
	}
	dynFeed(e, rng, byTime(evs))
	require.Less(t, probe(t, e, 1, 20*sec), 0.5, "the old keys are sampled down")

	// A trace of randomness 0 is kept only at probability 1.
	zero := func(k int64) sampling.Decision {
		tr := traceWith(traceID(0), "")
		tr.Keys[0], tr.KeySet, tr.Now = uint64(k), 1, 20*sec
		return e.Decide(tr)
	}
	d := zero(12345)
	assert.True(t, d.Keep(), "a new key's first trace is kept")
	assert.Equal(t, 1.0, d.Probability())
	// Its second, in the same interval, is not kept whole: it has the
	// probability of a rare key.
	assert.False(t, zero(12345).Keep(), "a new key's second trace is sampled")
	p := probe(t, e, 12345, 20*sec)
	assert.Less(t, p, 0.5)
	assert.GreaterOrEqual(t, p, probe(t, e, 1, 20*sec), "no less than an old key's")
	// Four more new keys' first traces are kept whole (five in all), then
	// no more until the next adjustment.
	for k := range int64(4) {
		assert.True(t, zero(20000+k).Keep(), "new key %d", k)
	}
	for k := range int64(10) {
		assert.False(t, zero(30000+k).Keep(), "new key %d, over the allowance", k)
	}
	// The next interval has an allowance again.
	tr := traceWith(traceID(0), "")
	tr.Keys[0], tr.KeySet, tr.Now = 40000, 1, 21*sec+sec/2
	assert.True(t, e.Decide(tr).Keep(), "a new key in the next interval")
}

// poissonCount is a helper's sanity check: the workloads have the rates
// they say.
func TestDynamicGoalWorkloads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	evs := poisson(nil, rng, 1, 2, 0, 1000*sec)
	assert.InDelta(t, 2000, len(evs), 4*math.Sqrt(2000))
}
