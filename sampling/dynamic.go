package sampling

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// DynamicConfig keeps about GoalTracesPerSecond traces per second in all,
// sharing them among the keys of the traces' root spans so that frequent
// keys are sampled down and rare keys kept, as Honeycomb Refinery's
// EMAThroughputSampler does:
//
//   - every AdjustmentInterval, the traces seen per key in the interval are
//     folded into an exponential moving average (EMA) with weight Weight;
//   - the interval's goal, GoalTracesPerSecond × AdjustmentInterval, is
//     shared among the keys in proportion to log10(1 + their average
//     count); a key whose share exceeds its count is kept whole and passes
//     what it leaves to the keys after it, taken from the rarest to the
//     most frequent, so that the shares add up to the goal whatever the
//     number of keys;
//   - a key's probability is its share divided by its average count;
//   - the first trace of a key not tracked is kept whole, up to half the
//     goal per interval (which the other keys' shares then leave out);
//     its later traces, until the next adjustment, get the probability of
//     the rarest key. A key is forgotten after 64 intervals unseen, or,
//     the table over three quarters of MaxKeys, the longest unseen first.
//
// With GoalPerKey, the goal is each key's own instead: a key is kept whole
// up to GoalTracesPerSecond and sampled down to it above, whatever the
// other keys do.
//
// Each trace is kept consistently: on its randomness, against the threshold
// of its key's current probability, which its tracestate then carries.
type DynamicConfig struct {
	// GoalTracesPerSecond is the kept rate aimed at, across all keys (or
	// per key, with GoalPerKey).
	GoalTracesPerSecond float64 `mapstructure:"goal_traces_per_second"`
	// GoalPerKey makes GoalTracesPerSecond each key's goal rather than the
	// total's; default false.
	GoalPerKey bool `mapstructure:"goal_per_key"`
	// Key lists the root-span fields traces are grouped by (see KeyFields);
	// default: resource.service.name and name, the root's service and
	// operation.
	Key KeyFields `mapstructure:"key"`
	// AdjustmentInterval is how often the probabilities are recomputed;
	// default 15s.
	AdjustmentInterval time.Duration `mapstructure:"adjustment_interval"`
	// Weight is the EMA weight of the newest interval, in (0, 1]; default 0.5.
	Weight float64 `mapstructure:"weight"`
	// MaxKeys bounds the keys tracked; default 10000. Traces of further keys
	// share one overflow key until tracked keys age out; over three
	// quarters of MaxKeys, the keys unseen in the last interval are
	// forgotten, the longest unseen first, to make room for new ones.
	MaxKeys int `mapstructure:"max_keys"`
}

// Defaults of DynamicConfig.
const (
	defaultDynamicInterval = 15 * time.Second
	defaultDynamicWeight   = 0.5
	defaultDynamicMaxKeys  = 10000
	maxDynamicMaxKeys      = 1 << 20
	// dynamicMaxIdle: a key unseen for this many intervals is forgotten.
	// Refinery forgets a key whose average falls below half a trace per
	// interval, which a key seen once every few intervals does between
	// any two of its traces: it then comes back new, kept whole.
	dynamicMaxIdle = 64
	// dynamicBurstMultiple: when the traces counted since the last
	// adjustment reach this multiple of the average per interval, the
	// probabilities are recomputed at once (Refinery's BurstMultiple).
	dynamicBurstMultiple = 2
	// dynamicRetakes bounds how many times an adjustment takes the counts
	// again after a stall while taking them; the last take stands.
	dynamicRetakes = 3
)

func defaultDynamicConfig() any {
	return &DynamicConfig{
		Key:                slices.Clone(DefaultKeyFields),
		AdjustmentInterval: defaultDynamicInterval,
		Weight:             defaultDynamicWeight,
		MaxKeys:            defaultDynamicMaxKeys,
	}
}

// Validate implements the config validator.
func (c *DynamicConfig) Validate() error {
	if !(c.GoalTracesPerSecond > 0) || math.IsInf(c.GoalTracesPerSecond, 1) {
		return fmt.Errorf("goal_traces_per_second: must be a positive number, got %v", c.GoalTracesPerSecond)
	}
	if err := c.Key.Validate(); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if c.AdjustmentInterval < time.Millisecond {
		return fmt.Errorf("adjustment_interval: must be at least 1ms, got %v", c.AdjustmentInterval)
	}
	if !(c.Weight > 0 && c.Weight <= 1) {
		return fmt.Errorf("weight: must be in (0, 1], got %v", c.Weight)
	}
	if c.MaxKeys < 1 || c.MaxKeys > maxDynamicMaxKeys {
		return fmt.Errorf("max_keys: must be between 1 and %d, got %d", maxDynamicMaxKeys, c.MaxKeys)
	}
	return nil
}

// dynamicStripes is the number of stripes of the key map, a power of two.
const dynamicStripes = 16

// dynKey is the state of one key. count is added to by Evaluate; th (the
// unsigned threshold) is read by Evaluate and written by adjust; the rest
// belongs to adjust, under dynamic.mu.
type dynKey struct {
	count atomic.Int64
	taken int64 // count as adjust took it, before it folds it
	th    atomic.Uint64
	hash  uint64
	ema   float64
	seen  int64 // the last adjustment that took traces of it
	// seeded is set once the key has an average: its first interval's
	// count seeds it, rather than Weight × count as from an average of 0.
	seeded bool
}

type dynamic struct {
	slot     int
	goal     float64 // traces per interval
	interval int64   // ns
	weight   float64
	perKey   bool

	keys *striped[map[uint64]*dynKey]
	// noRoot holds the traces without a key (their root never arrived),
	// overflow those whose key found no room under MaxKeys. Neither counts
	// against MaxKeys.
	noRoot, overflow dynKey

	total atomic.Int64 // traces counted since the last adjustment
	next  atomic.Int64 // Trace.Now from which the next adjustment is due; 0: not started
	burst atomic.Int64 // total at which an early adjustment is due
	// latest is the newest Trace.Now counted, to a hundredth of an
	// interval: adjust measures the interval to it, not to its caller's
	// Now, which may be older (a caller that stalled, or a shard's clock
	// read before another's).
	latest atomic.Int64

	// newTh is the threshold of a new key's traces after its first, until
	// the next adjustment: the rarest key's. fresh counts the first traces
	// of new keys since the last adjustment, of which the first allowance
	// are kept whole.
	newTh     atomic.Uint64
	fresh     atomic.Int64
	allowance int64

	mu       sync.Mutex // held by adjust
	last     int64      // start of the current interval
	warm     bool       // an adjustment after the cold start's was made
	freshAvg float64    // average of the first traces kept whole per interval
	scratch  []*dynKey
	idle     []*dynKey
}

func newDynamic(settings any, b *builder) (evaluator, error) {
	c := settings.(*DynamicConfig)
	hasher, err := c.Key.Hasher()
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	slot, err := b.Key(hasher)
	if err != nil {
		return nil, err
	}
	d := &dynamic{
		slot:     slot,
		goal:     c.GoalTracesPerSecond * c.AdjustmentInterval.Seconds(),
		interval: int64(c.AdjustmentInterval),
		weight:   c.Weight,
		perKey:   c.GoalPerKey,
		keys: newStriped(dynamicStripes, c.MaxKeys, func(m *map[uint64]*dynKey) {
			*m = make(map[uint64]*dynKey)
		}),
	}
	if d.goal <= 0 || math.IsInf(d.goal, 0) || math.IsNaN(d.goal) {
		return nil, errors.New("goal_traces_per_second: out of range")
	}
	always := otelsampling.AlwaysSampleThreshold.Unsigned()
	d.noRoot.th.Store(always)
	d.overflow.th.Store(always)
	d.newTh.Store(always)
	d.allowance = int64(math.Ceil(d.goal / 2))
	// Before the first adjustment every trace is kept, until the goal of
	// one interval is reached: then the probabilities are computed early.
	d.burst.Store(int64(math.Ceil(d.goal)))
	return d, nil
}

// Evaluate counts the trace under its key and keeps it with the key's
// current probability, on its randomness; a new key's first trace, within
// the allowance, is kept whole. In Redecide it counts nothing and adjusts
// nothing: a key not tracked is judged as a new key's first trace is (kept
// whole while the allowance lasts, else the rarest key's probability).
func (d *dynamic) Evaluate(t *Trace) Decision {
	always := otelsampling.AlwaysSampleThreshold.Unsigned()
	th := always
	if t.redo {
		// As Decide would answer, adding nothing: a key not tracked is
		// new, its trace kept whole while the interval's allowance lasts,
		// else with the rarest key's probability. (The sample_on_first_match
		// probe, and and's and drop's sub-policies after a refusal, state
		// the trace's set with this answer.)
		switch k, _ := d.lookup(t, false); {
		case k != nil:
			th = k.th.Load()
		case d.fresh.Load() >= d.allowance:
			th = d.newTh.Load()
		}
	} else {
		// An adjustment due is made first: the trace that finds the
		// interval over belongs to the next one.
		if next := d.next.Load(); next == 0 || t.Now >= next || d.total.Load() >= d.burst.Load() {
			d.adjust(t.Now)
		}
		if l := d.latest.Load(); t.Now > l+d.interval/100 {
			d.latest.CompareAndSwap(l, t.Now)
		}
		k, added := d.lookup(t, true)
		k.count.Add(1)
		d.total.Add(1)
		th = k.th.Load()
		if added && d.fresh.Add(1) <= d.allowance {
			th = always // a new key's first trace
		}
	}
	threshold, _ := otelsampling.UnsignedToThreshold(th)
	if t.ShouldSample(threshold) {
		return sampledAt(threshold)
	}
	// A refusal on randomness carries its threshold (the engine's union).
	return Decision{Verdict: NotSampled, Threshold: threshold}
}

// lookup returns the state of t's key, and whether this call added it.
// With add, a key not tracked is added if there is room, else its traces
// go to the overflow key; without, nothing is added, and nil stands for a
// key that would be.
func (d *dynamic) lookup(t *Trace, add bool) (*dynKey, bool) {
	if t.KeySet&(1<<d.slot) == 0 {
		return &d.noRoot, false
	}
	h := t.Keys[d.slot]
	s := d.keys.stripe(h)
	s.mu.RLock()
	k := s.data[h]
	s.mu.RUnlock()
	switch {
	case k != nil:
		return k, false
	case !add && d.keys.full():
		return &d.overflow, false
	case !add:
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k = s.data[h]; k != nil {
		return k, false
	}
	if !d.keys.admit(false) {
		return &d.overflow, false
	}
	// A new key's traces after its first get the rarest key's probability
	// until the next adjustment gives it its own (or a burst brings that
	// adjustment forward).
	k = &dynKey{hash: h}
	k.th.Store(d.newTh.Load())
	s.data[h] = k
	return k, true
}

// take takes every key's count since the last adjustment into its taken,
// and returns their sum; with back, it puts them back instead.
func (d *dynamic) take(back bool) (sum int64) {
	swap := func(k *dynKey) {
		if back {
			k.count.Add(k.taken)
		} else {
			k.taken = k.count.Swap(0)
			sum += k.taken
		}
	}
	for i := range d.keys.stripes {
		s := &d.keys.stripes[i]
		s.mu.Lock()
		for _, k := range s.data {
			swap(k)
		}
		s.mu.Unlock()
	}
	swap(&d.noRoot)
	swap(&d.overflow)
	return sum
}

// adjust folds the counts since the last adjustment into the keys' averages
// and recomputes their probabilities. One caller at a time does it; the
// others go on with the current probabilities.
func (d *dynamic) adjust(now int64) {
	if !d.mu.TryLock() {
		return
	}
	defer d.mu.Unlock()
	next := d.next.Load()
	if next == 0 {
		d.last = now
		d.next.Store(now + d.interval)
		return
	}
	if now < next && d.total.Load() < d.burst.Load() {
		return // another caller adjusted meanwhile
	}
	// The counts are taken first, then the interval is measured to the
	// newest time counted: a caller whose Now is older, or that stalled
	// before taking them while the others counted on, must not read the
	// counts of several intervals as one (and then the next adjustment's
	// as a fraction of one: a whole interval kept at probability 1).
	// A caller that stalls while taking them (descheduled, or waiting for
	// a stripe's lock) is the mirror case: the traces counted meanwhile
	// fall in the next adjustment's counts but before the time this one
	// measures to, and the next one reads them as one interval's. So when
	// the newest time moved on by more than one step of latest while the
	// counts were taken, they are put back and taken again: the counts and
	// the time they are measured to then disagree by at most two
	// hundredths of an interval, and a trace per caller in flight. The
	// total since the last adjustment loses what was taken, not what was
	// counted until now, for the same reason: a stall's traces would
	// otherwise bring a burst at once.
	for retake := 0; ; retake++ {
		from := d.latest.Load()
		taken := d.take(false)
		to := d.latest.Load()
		if to-from <= 2*(d.interval/100) || retake == dynamicRetakes {
			d.total.Add(-taken)
			now = max(now, to, d.last)
			break
		}
		d.take(true)
	}
	// The counts are brought to a whole interval: an early adjustment (a
	// burst) extrapolates them, by at most 100 times so that a burst of
	// traces stamped alike does not read as an endless rate; a late one
	// (no trace for a while) scales them down. A gap of several intervals
	// also weighs the new counts more, as that many intervals of decay
	// would.
	elapsed := max(now-d.last, d.interval/100)
	scale := float64(d.interval) / float64(elapsed)
	alpha := max(d.weight, 1-math.Pow(1-d.weight, float64(elapsed)/float64(d.interval)))

	keys := d.scratch[:0]
	// fold folds k's counts into its average, and reports whether it is
	// still tracked and whether it has an average to share the goal by.
	fold := func(k *dynKey) (tracked, shared bool) {
		n := float64(k.taken) * scale
		if n > 0 {
			k.seen = now
		}
		if !k.seeded {
			if n == 0 {
				// Added after the counts were taken: keeps the
				// threshold it was given until the next adjustment.
				return k.count.Load() > 0, false
			}
			k.ema, k.seeded = n, true
		} else {
			k.ema = alpha*n + (1-alpha)*k.ema
		}
		if now-k.seen > dynamicMaxIdle*d.interval {
			k.ema, k.seeded = 0, false
			return false, false
		}
		return true, true
	}
	for i := range d.keys.stripes {
		s := &d.keys.stripes[i]
		s.mu.Lock()
		for h, k := range s.data {
			switch tracked, shared := fold(k); {
			case !tracked:
				delete(s.data, h)
				d.keys.forget()
			case shared:
				keys = append(keys, k)
			}
		}
		s.mu.Unlock()
	}
	keys = d.evict(keys, now)
	for _, k := range [...]*dynKey{&d.noRoot, &d.overflow} {
		switch tracked, shared := fold(k); {
		case shared:
			keys = append(keys, k)
		case !tracked:
			// Absent for a while: kept whole again when it returns.
			k.th.Store(otelsampling.AlwaysSampleThreshold.Unsigned())
		}
	}
	// The first traces of new keys kept whole come out of the goal the
	// keys share: at most half of it (the allowance, a whole number, may
	// be more, with a goal of less than two traces per interval).
	fresh := float64(min(d.fresh.Swap(0), d.allowance)) * scale
	if !d.warm {
		fresh, d.warm = 0, true // the cold start kept every trace anyway
	}
	d.freshAvg = alpha*fresh + (1-alpha)*d.freshAvg
	total := d.share(keys, d.goal-min(d.freshAvg, d.goal/2))
	clear(keys) // let forgotten keys go
	d.scratch = keys[:0]
	d.last = now
	d.burst.Store(int64(math.Ceil(max(d.goal, dynamicBurstMultiple*total))))
	d.next.Store(now + d.interval)
}
