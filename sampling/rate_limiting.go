package sampling

import (
	"errors"
	"math"
	"sync"
	"time"
)

// RateLimitingConfig keeps traces within a token bucket of spans, as
// contrib's rate_limiting policy does: the bucket refills at SpansPerSecond,
// holds at most BurstCapacity spans, and a trace takes as many tokens as it
// has spans. A trace with more spans than BurstCapacity never passes.
//
// In the default mode, consistent, the policy samples on the trace's
// randomness with a probability it sets from the demand it sees, and kept
// traces carry that probability's threshold, so that their adjusted counts
// add up to the traffic (docs/policies/counts.md); the limit then holds on
// average rather than for every trace. Mode strict is contrib's hard limit
// with probability 1.
type RateLimitingConfig struct {
	// SpansPerSecond is the sustained rate, in spans per second.
	SpansPerSecond int64 `mapstructure:"spans_per_second"`
	// BurstCapacity is the bucket size in spans; 0 means 2×SpansPerSecond.
	BurstCapacity int64 `mapstructure:"burst_capacity"`
	// Mode is consistent (the default) or strict.
	Mode LimitMode `mapstructure:"mode"`
}

// Validate implements the config validator.
func (c *RateLimitingConfig) Validate() error {
	if err := validateBucket("spans_per_second", c.SpansPerSecond, c.BurstCapacity); err != nil {
		return err
	}
	return c.Mode.validate()
}

// validateBucket checks a token bucket's rate and burst keys. contrib accepts
// a rate of 0 (a bucket that never refills) and treats a negative burst as
// unset; both are refused here as configuration mistakes.
func validateBucket(rateKey string, perSecond, burst int64) error {
	if perSecond <= 0 {
		return errors.New(rateKey + ": must be positive")
	}
	if burst < 0 {
		return errors.New("burst_capacity: must not be negative")
	}
	if burst == 0 && perSecond > math.MaxInt64/2 {
		return errors.New(rateKey + ": too large for the default burst_capacity (2×" + rateKey + "); set burst_capacity")
	}
	return nil
}

func newRateLimiting(settings any, b *builder) (evaluator, error) {
	c := settings.(*RateLimitingConfig)
	return newLimiter(b, c.SpansPerSecond, c.BurstCapacity, false, c.Mode)
}

// limiter is the rate_limiting or bytes_limiting policy: a token bucket of
// spans or of bytes (strict), or a share controller (consistent), and its
// charger bit.
type limiter struct {
	bucket *tokenBucket // strict
	share  *rateShare   // consistent
	bytes  bool         // tokens are bytes (Trace.SizeBytes), else spans
	bit    uint64
}

func newLimiter(b *builder, perSecond, burst int64, bytes bool, mode LimitMode) (*limiter, error) {
	l := &limiter{bytes: bytes}
	if mode == LimitStrict {
		l.bucket = newTokenBucket(perSecond, burst)
	} else {
		l.share = newRateShare(perSecond, burst)
	}
	var err error
	l.bit, err = b.charger(l)
	return l, err
}

// cost is the tokens t takes: its spans, or its size in bytes.
func (l *limiter) cost(t *Trace) int64 {
	switch {
	case !l.bytes:
		return int64(t.SpanCount)
	case t.SizeBytes < math.MaxInt64:
		return int64(t.SizeBytes)
	}
	return math.MaxInt64
}

// Evaluate keeps the trace, with probability 1 as contrib does, when the
// bucket holds a token for each of its spans (or bytes) at the decision
// time t.Now, and takes them; in Redecide (t.redo) it takes nothing and
// marks its charge pending, unless an earlier decision charged t, which it
// then keeps.
func (l *limiter) Evaluate(t *Trace) Decision {
	n := l.cost(t)
	if l.share != nil {
		return l.evaluateShare(t, n)
	}
	switch {
	case !t.redo:
		if !l.bucket.allow(t.Now, n) {
			return Decision{}
		}
		t.charged |= l.bit
	case t.charged&l.bit != 0:
	case l.bucket.allows(t.Now, n):
		t.pending |= l.bit
	default:
		return Decision{}
	}
	return keepAlways
}

func (l *limiter) charge(t *Trace) {
	if l.share != nil {
		l.share.charge(t.Now, l.cost(t))
		return
	}
	l.bucket.take(t.Now, l.cost(t))
}

// evaluateShare is Evaluate in consistent mode: the trace is kept if its
// randomness passes the threshold of the share's probability, which does
// not depend on the trace's randomness, so that 1/p counts it without bias.
// A trace costlier than the burst is refused outright (probability 0, as
// contrib refuses it). A refusal carries the threshold it was decided on,
// which not needs to mark what it keeps. In Redecide the share learns
// nothing and the charge is pending.
func (l *limiter) evaluateShare(t *Trace, n int64) Decision {
	if float64(n) > l.share.burst {
		return Decision{}
	}
	th := l.share.threshold(t.Now, n, !t.redo)
	if !t.ShouldSample(th) {
		return Decision{Verdict: NotSampled, Threshold: th}
	}
	switch {
	case !t.redo:
		l.share.charge(t.Now, n)
		t.charged |= l.bit
	case t.charged&l.bit == 0:
		t.pending |= l.bit
	}
	return sampledAt(th)
}

// tokenBucket is golang.org/x/time/rate's Limiter, as contrib's rate_limiting
// and bytes_limiting use it through AllowN, with the same float arithmetic,
// but driven by the trace's decision time instead of the wall clock.
type tokenBucket struct {
	mu     sync.Mutex
	limit  float64 // tokens per second
	burst  int64
	tokens float64
	last   int64 // Unix ns of the last allowed request
}

// newTokenBucket returns a full bucket; burst 0 means 2×perSecond, contrib's
// default.
func newTokenBucket(perSecond, burst int64) *tokenBucket {
	if burst <= 0 {
		burst = perSecond * 2
	}
	return &tokenBucket{limit: float64(perSecond), burst: burst, tokens: float64(burst)}
}

// allow reports whether n tokens are available at now and takes them if so
// (rate.Limiter.AllowN). A refused request changes nothing.
func (b *tokenBucket) allow(now, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	tokens, ok := b.check(now, n)
	if ok {
		// Never back: the shards stamp their decisions each with its own
		// clock read, so a stamp may come behind the last one; moving
		// last back to it refilled that interval twice at the next stamp
		// (1.14 times the rate with stamps 1 ms apart, everything with
		// 50 ms).
		b.last, b.tokens = max(b.last, now), tokens
	}
	return ok
}

// allows reports whether allow would take n tokens at now, taking none.
func (b *tokenBucket) allows(now, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.check(now, n)
	return ok
}

// take takes n tokens at now even when the bucket holds fewer: the deficit
// delays what the bucket allows next, as a reservation does in
// rate.Limiter.
func (b *tokenBucket) take(now, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tokens, _ := b.check(now, n)
	b.last, b.tokens = max(b.last, now), tokens // never back (allow)
}

// check returns the tokens left at now after taking n, and whether allow
// would take them. The caller holds b.mu.
func (b *tokenBucket) check(now, n int64) (float64, bool) {
	last := b.last
	if now < last {
		last = now
	}
	tokens := b.tokens
	if b.limit > 0 {
		tokens += time.Duration(now-last).Seconds() * b.limit
	}
	if burst := float64(b.burst); tokens > burst {
		tokens = burst
	}
	tokens -= float64(n)
	return tokens, n <= b.burst && (tokens >= 0 || b.waitFor(-tokens) <= 0)
}

// waitFor is rate.Limit.durationFromTokens: how long the bucket takes to
// refill the missing tokens. Like rate.Limiter, a deficit worth less than a
// nanosecond of refill is allowed.
func (b *tokenBucket) waitFor(missing float64) time.Duration {
	if b.limit <= 0 {
		return time.Duration(math.MaxInt64)
	}
	d := missing / b.limit * float64(time.Second)
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}
