package sampling

import (
	"fmt"
	"math"
	"sync"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// LimitMode is how a limiting policy (rate_limiting, bytes_limiting) keeps
// traces within its rate.
type LimitMode string

const (
	// LimitConsistent samples on the trace's randomness with a probability
	// set from the demand, and marks kept traces with its threshold: their
	// adjusted counts add up to the traffic. The rate holds on average.
	LimitConsistent LimitMode = "consistent"
	// LimitStrict is contrib's token bucket: a trace is kept, with
	// probability 1, whenever the bucket holds its cost. The rate holds for
	// every trace, but the adjusted counts of kept traces come out low as
	// soon as the limit bites.
	LimitStrict LimitMode = "strict"
)

func (m LimitMode) validate() error {
	switch m {
	case "", LimitConsistent, LimitStrict:
		return nil
	}
	return fmt.Errorf("mode: unknown mode %q (want consistent or strict)", string(m))
}

// shareTau is the time constant of the demand estimate and of the bucket's
// pull on the probability.
const shareTau = float64(time.Second)

// minShareFactor bounds how far below rate/demand an overspent bucket pulls
// the probability: a probability must stay positive for 1/p to count the
// traces it refuses.
const minShareFactor = 1.0 / 8

// rateShare sets the probability at which a limiting policy keeps traces so
// that, on average, the kept cost per second is its rate. It is an adaptive
// threshold sampler whose threshold, unlike contrib's batch threshold (PR
// #49979), is known before the trace is looked at: it depends only on the
// traces decided before, so Horvitz–Thompson counts (1/p per kept trace) are
// unbiased whatever the traffic does.
//
// It measures the demand D (cost per second reaching the policy, an
// exponentially weighted average with time constant shareTau) and keeps a
// bucket T of tokens as contrib's does (refilled at the rate r, at most the
// burst B), from which kept traces are charged, going into deficit down to
// -B. The probability is (r + T/τ) / D, within [r/(8D), 1]: r/D in the
// steady state, more while the bucket holds a burst to spend, less while it
// is in deficit. The bucket makes the long-run kept rate r: a kept rate
// above r drains it, which lowers p, and the reverse.
type rateShare struct {
	rate, burst float64
	mu          sync.Mutex
	tokens      float64 // in [-burst, burst]
	demand      float64 // cost per second
	last        int64   // Unix ns of the state
}

func newRateShare(perSecond, burst int64) *rateShare {
	if burst <= 0 {
		burst = 2 * perSecond
	}
	return &rateShare{rate: float64(perSecond), burst: float64(burst), tokens: float64(burst)}
}

// advance returns the tokens and demand at now. The caller holds s.mu.
func (s *rateShare) advance(now int64) (tokens, demand float64) {
	dt := float64(max(now-s.last, 0))
	if s.last == 0 {
		dt = 0
	}
	tokens = min(s.burst, s.tokens+s.rate*dt/float64(time.Second))
	return tokens, s.demand * math.Exp(-dt/shareTau)
}

// threshold returns the threshold for a trace of cost n decided at now,
// counting n in the demand first (learn) or not (Redecide).
func (s *rateShare) threshold(now, n int64, learn bool) otelsampling.Threshold {
	return thresholdOf(1, s.probability(now, float64(n), learn))
}

// thresholdOf is the threshold of q·p, q being a policy's conditional
// probability and p a limiter's (1 keeps q), never more permissive than q.
func thresholdOf(q, p float64) otelsampling.Threshold {
	if q*p >= 1 {
		return otelsampling.AlwaysSampleThreshold
	}
	th, err := otelsampling.ProbabilityToThreshold(max(q*p, otelsampling.MinSamplingProbability))
	if err != nil {
		return otelsampling.AlwaysSampleThreshold
	}
	return th
}

// probability returns the probability for a trace of cost n decided at
// now, from the traces before it, and then counts n in the demand unless
// in Redecide (learn false).
func (s *rateShare) probability(now int64, n float64, learn bool) float64 {
	s.mu.Lock()
	tokens, demand := s.advance(now)
	if learn {
		s.tokens, s.demand, s.last = tokens, demand+n*float64(time.Second)/shareTau, max(now, s.last)
	}
	s.mu.Unlock()
	if demand <= 0 {
		return 1
	}
	return min(1, s.rate/demand*max(1+tokens/s.rate*float64(time.Second)/shareTau, minShareFactor))
}

// charge takes a kept trace's cost n from the bucket at now.
func (s *rateShare) charge(now, n int64) { s.chargeCost(now, float64(n)) }

// chargeCost takes cost n from the bucket at now.
func (s *rateShare) chargeCost(now int64, n float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens, demand := s.advance(now)
	s.tokens, s.demand, s.last = max(tokens-n, -s.burst), demand, max(now, s.last)
}
