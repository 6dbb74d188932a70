package sampling

import (
	"math"
	"math/bits"
)

// The latency histogram of a key: log-linear buckets, four per octave of
// nanoseconds, from 2^minOctave ns (about 1 µs; bucket 0 also holds
// everything faster) to 2^(minOctave+octaves) ns (about 73 min; the last
// bucket also holds everything slower). Within an octave [2^e, 2^(e+1)) the
// buckets split it in four equal parts, so a bucket's upper bound is at most
// 1.25 times its lower bound: that is the model's resolution.
const (
	minOctave        = 10
	octaves          = 32
	bucketsPerOctave = 4
	numBuckets       = octaves * bucketsPerOctave
)

// bucketBounds[i] is the lower bound of bucket i in nanoseconds, and
// bucketBounds[i+1] its upper bound.
var bucketBounds = func() (b [numBuckets + 1]float64) {
	for i := 1; i <= numBuckets; i++ {
		e, sub := minOctave+i/bucketsPerOctave, i%bucketsPerOctave
		b[i] = math.Ldexp(float64(bucketsPerOctave+sub)/bucketsPerOctave, e)
	}
	return b
}()

// bucketOf returns the bucket of a duration in nanoseconds, with a few
// integer operations.
func bucketOf(d uint64) int {
	if d < 1<<minOctave {
		return 0
	}
	e := bits.Len64(d) - 1 // 2^e <= d < 2^(e+1)
	sub := int(d>>(e-2)) & (bucketsPerOctave - 1)
	i := (e-minOctave)*bucketsPerOctave + sub
	return min(i, numBuckets-1)
}

// maxExponent bounds the growth of the forward-decay weights: once a key's
// weights reach 2^maxExponent, its sums are divided by them and its landmark
// moves to now. Float32 buckets keep a count of 2^24 observations times 2^32
// well within range.
const maxExponent = 32

// keyState is the model of one key: a decayed latency histogram and decayed
// error counts over a long (half_life) and a short (error_rate_window)
// window.
//
// Decay is forward decay: an observation at time now is added with weight
// 2^((now-epoch)/halfLife) instead of multiplying every past count by a decay
// factor, so an observation touches one bucket. The decayed count at now is
// a sum divided by the weight at now; ratios (quantiles, error rates) need no
// division at all.
type keyState struct {
	hash     uint64
	epoch    int64 // landmark of the weights, Unix ns
	lastSeen int64 // latest observation, Unix ns
	// Long window (half_life): every observation, the error observations,
	// and the observations with a duration (those in buckets).
	total, errLong, histTotal float64
	// Short window (error_rate_window); anomShort counts the traces
	// judged latency anomalies.
	totShort, errShort, anomShort float64
	lo                            int32  // lowest bucket used, where quantile scans start
	anomalies                     uint64 // traces judged anomalous, for the status page
	buckets                       [numBuckets]float32
}

// decay holds the two windows' half-lives as the reciprocal of nanoseconds.
type decay struct{ invLong, invShort float64 }

// exponents returns the long and short exponents of time now relative to the
// key's landmark. Time never runs backwards for a key: a decision stamped
// before the landmark (another shard's clock) counts as at the landmark.
func (d decay) exponents(k *keyState, now int64) (long, short float64) {
	dt := float64(max(now-k.epoch, 0))
	return dt * d.invLong, dt * d.invShort
}

// weights returns the long and short weights at now, first moving the
// landmark when they would grow past 2^maxExponent.
func (d decay) weights(k *keyState, now int64) (wLong, wShort float64) {
	el, es := d.exponents(k, now)
	if el > maxExponent || es > maxExponent {
		k.rescale(math.Exp2(-el), math.Exp2(-es))
		k.epoch = now
		return 1, 1
	}
	return math.Exp2(el), math.Exp2(es)
}

// peekWeights returns the long and short weights at now without moving the
// landmark, for a read-only judgement.
func (d decay) peekWeights(k *keyState, now int64) (wLong, wShort float64) {
	el, es := d.exponents(k, now)
	return math.Exp2(el), math.Exp2(es)
}

func (k *keyState) rescale(long, short float64) {
	k.total *= long
	k.errLong *= long
	k.histTotal *= long
	k.totShort *= short
	k.errShort *= short
	k.anomShort *= short
	f := float32(long)
	for i := range k.buckets {
		k.buckets[i] *= f
	}
}

// add adds one trace with the weights at now that d.weights returned; a
// duration of 0 adds none to the histogram.
func (k *keyState) add(wl, ws float64, now int64, dur uint64, isErr bool) {
	k.total += wl
	k.totShort += ws
	if isErr {
		k.errLong += wl
		k.errShort += ws
	}
	if dur > 0 {
		b := bucketOf(dur)
		if k.histTotal == 0 || int32(b) < k.lo {
			k.lo = int32(b)
		}
		k.histTotal += wl
		k.buckets[b] += float32(wl)
	}
	k.lastSeen = max(k.lastSeen, now)
}

// shiftShare is the short-window share of latency anomalies at which a key's
// latency counts as having shifted: from then on its slow traces are learnt
// again, so that the model follows a lasting change instead of flagging it
// for ever. Below it (a route where anomalies are a minority of the
// traffic) the anomalies are not learnt, and do not drag the quantile into
// the tail.
const shiftShare = 0.5

// shifted reports whether k's latency has shifted (shiftShare), judged on
// at least minObs decayed short-window observations so that a few
// anomalies in a row on a new key are not a shift.
func (k *keyState) shifted(minObs, ws float64) bool {
	return k.totShort >= minObs*ws && k.anomShort >= shiftShare*k.totShort
}

// quantile returns the q-quantile of the key's durations in nanoseconds,
// interpolated linearly within its bucket; 0 when the histogram is empty.
func (k *keyState) quantile(q float64) float64 {
	return k.quantileAt(q * k.histTotal)
}

// tukeyK is the fence of robustQuantile, in interquartile ranges above the
// third quartile, in log space: 2.7σ above the median of a log-normal, so
// that it cuts 0.35 % of a clean key's durations whatever its spread.
const tukeyK = 1.5 // robustQuantile computes its power as r·√r

// robustQuantile returns the q-quantile of the key's durations below the
// fence q3·(q3/q1)^tukeyK (Tukey's fence in log space). Outliers the model
// learnt — the first traces of a key, judged by nothing, or anomalies
// learnt before the key was warm — then do not drag a tail quantile up: a
// single one among 20 observations would otherwise be their p95, and the
// key would hide every anomaly for a half-life.
func (k *keyState) robustQuantile(q float64) float64 {
	if k.histTotal <= 0 {
		return 0
	}
	// One scan finds the quartiles, then the mass below the fence; the
	// quantile is found from the third quartile's bucket on when it lies
	// above it, which it does unless the fence cuts most of the tail.
	t1, t3 := 0.25*k.histTotal, 0.75*k.histTotal
	var cum, q1, q3, fence, mass, cum3 float64
	i3 := -1
	for i := int(k.lo); i < numBuckets; i++ {
		c := float64(k.buckets[i])
		if c == 0 {
			continue
		}
		lo, hi := bucketBounds[i], bucketBounds[i+1]
		next := cum + c
		if q1 == 0 && next >= t1 {
			q1 = lo + (t1-cum)/c*(hi-lo)
		}
		if i3 < 0 && next >= t3 {
			q3, i3, cum3 = lo+(t3-cum)/c*(hi-lo), i, cum
			r := q3 / q1
			fence = q3 * r * math.Sqrt(r) // (q3/q1)^tukeyK
		}
		if i3 >= 0 {
			if fence <= lo {
				break
			}
			if fence < hi {
				c *= (fence - lo) / (hi - lo)
			}
		}
		mass += c
		cum = next
	}
	if i3 < 0 || q1 <= 0 {
		return k.quantile(q)
	}
	target := q * mass
	if target < cum3 {
		return k.quantileAt(target)
	}
	cum = cum3
	for i := i3; i < numBuckets; i++ {
		c := float64(k.buckets[i])
		if c == 0 {
			continue
		}
		if next := cum + c; next >= target {
			lo, hi := bucketBounds[i], bucketBounds[i+1]
			return lo + (target-cum)/c*(hi-lo)
		}
		cum += c
	}
	return k.quantileAt(target)
}

// massBelow returns the decayed number of durations below x, counting the
// bucket holding x in proportion.
func (k *keyState) massBelow(x float64) float64 {
	var mass float64
	for i := int(k.lo); i < numBuckets; i++ {
		lo, hi := bucketBounds[i], bucketBounds[i+1]
		if x <= lo {
			break
		}
		c := float64(k.buckets[i])
		if x < hi {
			c *= (x - lo) / (hi - lo)
		}
		mass += c
	}
	return mass
}

// quantileAt returns the duration below which the decayed count of
// durations is target, interpolated linearly within its bucket; 0 when the
// histogram is empty.
func (k *keyState) quantileAt(target float64) float64 {
	if target <= 0 {
		return 0
	}
	var cum float64
	for i := int(k.lo); i < numBuckets; i++ {
		c := k.buckets[i]
		if c == 0 {
			continue
		}
		next := cum + float64(c)
		if next >= target {
			frac := (target - cum) / float64(c)
			lo, hi := bucketBounds[i], bucketBounds[i+1]
			return lo + frac*(hi-lo)
		}
		cum = next
	}
	// Rounding left target just above the sum: the highest bucket used.
	for i := numBuckets - 1; i >= 0; i-- {
		if k.buckets[i] > 0 {
			return bucketBounds[i+1]
		}
	}
	return 0
}

// keyTable is the per-key model, striped: a key lives in the stripe of its
// hash, under that stripe's lock. It holds at most maxKeys keys, counted
// globally; each stripe's slab, allocated up front, has room for half again
// its share of maxKeys plus 8, so that the uneven spread of hashes over
// stripes practically never evicts before the cap. Once built the table
// allocates nothing except when the index map of a stripe rehashes on a new
// key.
type keyTable struct {
	*striped[modelKeys]
	decay decay
}

// modelKeys is what a stripe of the model holds.
type modelKeys struct {
	index map[uint64]int32 // key hash -> position in keys; no pointers for the GC to scan
	keys  []keyState       // len = keys in use, cap = the stripe's slab
}

// stripeCount is the number of stripes for maxKeys: a power of two, at most
// 64, with a share of at least 16 keys per stripe.
func stripeCount(maxKeys int) int {
	n := 1
	for n < 64 && 2*n*16 <= maxKeys {
		n *= 2
	}
	return n
}

func newKeyTable(maxKeys int, d decay) *keyTable {
	n := stripeCount(maxKeys)
	share := (maxKeys + n - 1) / n
	slab := min(share+share/2+8, maxKeys)
	return &keyTable{striped: newStriped(n, maxKeys, func(s *modelKeys) {
		s.index = make(map[uint64]int32, slab)
		s.keys = make([]keyState, 0, slab)
	}), decay: d}
}

// find returns the state of h in its stripe s, nil when absent. The caller
// holds the stripe's lock.
func (t *keyTable) find(s *modelKeys, h uint64) *keyState {
	if i, ok := s.index[h]; ok {
		return &s.keys[i]
	}
	return nil
}

// lookup returns the state of h in its stripe s, creating it when absent
// (created is then true). The caller holds the stripe's lock. When the table holds
// maxKeys keys, or s's slab is full, a key of s is evicted: the one with the
// smallest decayed count at now, the least recently seen among equals. So
// the least active key makes room, and a burst of one-off keys evicts its
// own kind before any established key. (A key whose stripe is empty is
// admitted even at the cap: with a share of 16 keys or more per stripe,
// that needs a very uneven spread.)
func (t *keyTable) lookup(s *modelKeys, h uint64, now int64) (k *keyState, created bool) {
	if i, ok := s.index[h]; ok {
		return &s.keys[i], false
	}
	var pos int
	if len(s.keys) < cap(s.keys) && t.admit(len(s.keys) == 0) {
		pos = len(s.keys)
		s.keys = s.keys[:pos+1]
	} else {
		pos = s.victim(now, t.decay)
		delete(s.index, s.keys[pos].hash)
	}
	s.index[h] = int32(pos)
	s.keys[pos] = keyState{hash: h, epoch: now, lastSeen: now}
	return &s.keys[pos], true
}

// victim returns the position of the key to evict: the smallest decayed
// count at now, compared in the log domain (log2 of the sum minus the
// exponent of now), then the oldest lastSeen.
func (s *modelKeys) victim(now int64, d decay) int {
	best, bestScore := 0, math.Inf(1)
	for i := range s.keys {
		k := &s.keys[i]
		el, _ := d.exponents(k, now)
		score := math.Log2(k.total) - el
		if score < bestScore || (score == bestScore && k.lastSeen < s.keys[best].lastSeen) {
			best, bestScore = i, score
		}
	}
	return best
}
