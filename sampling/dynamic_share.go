package sampling

import (
	"cmp"
	"math"
	"slices"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// evict forgets, while the table holds more than three quarters of
// max_keys, the keys not seen in the interval just folded, the longest
// unseen first (then the rarest), so that new keys find room rather than
// the overflow key. It returns keys without them. Under adjust's lock.
func (d *dynamic) evict(keys []*dynKey, now int64) []*dynKey {
	excess := d.keys.count.Load() - d.keys.maxKeys*3/4
	if excess <= 0 {
		return keys
	}
	idle := d.idle[:0]
	for _, k := range keys {
		if k.seen < now {
			idle = append(idle, k)
		}
	}
	slices.SortFunc(idle, func(a, b *dynKey) int {
		return cmp.Or(cmp.Compare(a.seen, b.seen), cmp.Compare(a.ema, b.ema), cmp.Compare(a.hash, b.hash))
	})
	idle = idle[:min(int64(len(idle)), excess)]
	for _, k := range idle {
		s := d.keys.stripe(k.hash)
		s.mu.Lock()
		delete(s.data, k.hash)
		s.mu.Unlock()
		d.keys.forget()
		k.ema, k.seeded = 0, false
	}
	clear(idle)
	d.idle = idle[:0]
	return slices.DeleteFunc(keys, func(k *dynKey) bool { return !k.seeded })
}

// share shares goal (traces per interval) among keys and stores each
// key's threshold, and the threshold of a new key's later traces; it
// returns the keys' total average per interval. Under adjust's lock.
//
// Each key's share is in proportion to log10(1 + its average): about
// log10 of it for a frequent key, as in Refinery, and, for a key of less
// than a trace per interval, about its average over ln 10, so that rare
// keys are all kept with about one probability, ratio/ln 10, which their
// averages' noise (a key seen once in ten intervals averages 0.5 after
// its trace, 0.002 eight intervals later) hardly moves. Taken from the
// rarest, a key whose share exceeds its average is kept whole and passes
// what it leaves to the keys after it, so the shares kept add up to the
// goal, or to every key's average when that is less.
func (d *dynamic) share(keys []*dynKey, goal float64) (total float64) {
	always := otelsampling.AlwaysSampleThreshold.Unsigned()
	if d.perKey {
		for _, k := range keys {
			total += k.ema
			k.th.Store(dynThreshold(d.goal / k.ema))
		}
		d.newTh.Store(always)
		return total
	}
	// Rarest first, so that what rare keys leave flows to frequent ones;
	// ties by hash, for a result independent of map order.
	slices.SortFunc(keys, func(a, b *dynKey) int {
		return cmp.Or(cmp.Compare(a.ema, b.ema), cmp.Compare(a.hash, b.hash))
	})
	var weights float64
	for _, k := range keys {
		weights += math.Log1p(k.ema) / math.Ln10
		total += k.ema
	}
	ratio := math.Inf(1) // no key with an average: every key whole
	if weights > 0 {
		ratio = goal / weights
	}
	extra := 0.0
	for i, k := range keys {
		share := extra / float64(len(keys)-i)
		extra -= share
		if k.ema == 0 {
			// No traces of late (with weight 1): as a key of a vanishing
			// average would be, it passes its share on.
			extra += share
			k.th.Store(dynThreshold(ratio / math.Ln10))
			continue
		}
		share += math.Log1p(k.ema) / math.Ln10 * ratio
		if k.ema <= share {
			extra += share - k.ema
		}
		k.th.Store(dynThreshold(share / k.ema))
	}
	d.newTh.Store(dynThreshold(ratio / math.Ln10))
	return total
}

// dynThreshold returns the unsigned threshold of probability p, capped at
// 1 and floored at the least probability a threshold can say.
func dynThreshold(p float64) uint64 {
	if !(p < 1) {
		return otelsampling.AlwaysSampleThreshold.Unsigned()
	}
	th, err := otelsampling.ProbabilityToThreshold(max(p, otelsampling.MinSamplingProbability))
	if err != nil {
		return otelsampling.AlwaysSampleThreshold.Unsigned()
	}
	return th.Unsigned()
}
