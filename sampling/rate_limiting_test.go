package sampling_test

import (
	"math/rand/v2"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// step is one evaluation of a stateful policy: a trace of spans spans (or
// bytes bytes) decided at now, and the verdict wanted.
type step struct {
	now   int64
	spans int
	bytes uint64
	want  sampling.Verdict
}

func runSteps(t *testing.T, p sampling.Policy, steps []step) {
	t.Helper()
	for i, s := range steps {
		d := p.Evaluate(&sampling.Trace{Now: s.now, SpanCount: s.spans, SizeBytes: s.bytes})
		require.Equal(t, s.want, d.Verdict, "step %d", i)
		if s.want == sampling.Sampled {
			// Rate-limited traces are kept with probability 1, as in contrib.
			require.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold, "step %d", i)
		}
	}
}

// Ported from contrib's rate_limiting_test.go (token bucket, gate off), with
// time driven through Trace.Now instead of time.Sleep.
func TestRateLimiting(t *testing.T) {
	ms := int64(time.Millisecond)
	tests := []struct {
		name       string
		sps, burst int64
		steps      []step
	}{
		{
			// TestRateLimiterTokenBucket
			name: "first trace consumes the entire burst", sps: 3, burst: 3,
			steps: []step{{t0, 3, 0, sampling.Sampled}, {t0, 1, 0, sampling.NotSampled}},
		},
		{
			// TestRateLimiterBurstCapacityRejectsLargeTrace
			name: "a trace larger than the burst is rejected", sps: 3, burst: 2,
			steps: []step{{t0, 3, 0, sampling.NotSampled}, {t0 + 10*sec, 3, 0, sampling.NotSampled}, {t0 + 10*sec, 2, 0, sampling.Sampled}},
		},
		{
			// TestRateLimiterDefaultConstructorBurst
			name: "default burst is twice the rate", sps: 2,
			steps: []step{
				{t0, 1, 0, sampling.Sampled}, {t0, 1, 0, sampling.Sampled}, {t0, 1, 0, sampling.Sampled}, {t0, 1, 0, sampling.Sampled},
				{t0, 1, 0, sampling.NotSampled},
			},
		},
		{
			// TestRateLimiterTokenRefill
			name: "tokens refill at the rate", sps: 4, burst: 2,
			steps: []step{{t0, 2, 0, sampling.Sampled}, {t0, 2, 0, sampling.NotSampled}, {t0 + 600*ms, 2, 0, sampling.Sampled}},
		},
		{
			name: "refill is continuous: 2 tokens at 4/s take 500ms", sps: 4, burst: 2,
			steps: []step{
				{t0, 2, 0, sampling.Sampled},
				{t0 + 250*ms, 2, 0, sampling.NotSampled}, // 1 token
				{t0 + 250*ms, 1, 0, sampling.Sampled},    // takes it
				{t0 + 499*ms, 1, 0, sampling.NotSampled}, // 0.996 tokens
				{t0 + 500*ms, 1, 0, sampling.Sampled},
			},
		},
		{
			name: "a refused trace takes no tokens", sps: 1, burst: 10,
			steps: []step{{t0, 11, 0, sampling.NotSampled}, {t0, 10, 0, sampling.Sampled}, {t0, 1, 0, sampling.NotSampled}},
		},
		{
			name: "the bucket holds at most the burst", sps: 10, burst: 5,
			steps: []step{{t0, 5, 0, sampling.Sampled}, {t0 + 100*sec, 5, 0, sampling.Sampled}, {t0 + 100*sec, 1, 0, sampling.NotSampled}},
		},
		{
			// As rate.Limiter: an earlier time than the last allowed one
			// refills nothing and becomes the new reference.
			name: "time going backwards refills nothing", sps: 10, burst: 10,
			steps: []step{
				{t0, 10, 0, sampling.Sampled},
				{t0 - sec, 1, 0, sampling.NotSampled},
				{t0 + 100*ms, 1, 0, sampling.Sampled},
			},
		},
		{
			name: "a trace of no spans always passes", sps: 1, burst: 1,
			steps: []step{{t0, 1, 0, sampling.Sampled}, {t0, 0, 0, sampling.Sampled}, {t0, 1, 0, sampling.NotSampled}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, build(t, rateLimitingPolicy("rl", tt.sps, tt.burst)), tt.steps)
		})
	}
}

func TestRateLimitingConcurrent(t *testing.T) {
	// 8 goroutines race for a burst of 100 single-span traces at one
	// instant: exactly 100 pass.
	p := build(t, rateLimitingPolicy("rl", 1, 100))
	assert.Equal(t, 100, samplingtest.KeptConcurrently(p, t0, 8, 50))
}

func TestRateLimitingInEngine(t *testing.T) {
	// A head-sampled trace (th for 1/4) kept by rate_limiting is marked 1/4:
	// the policy keeps with probability 1, the engine scales by the head's.
	e := newEngine(t, rateLimitingPolicy("rl", 5, 5))
	tr := traceWith(traceID(1<<55), "ot=th:c")
	tr.SpanCount, tr.Now = 5, t0
	d := e.Decide(tr)
	require.True(t, d.Keep())
	assert.Equal(t, "rl", d.Policy)
	assert.Equal(t, th(t, "c"), d.Threshold)
	d = e.Decide(tr)
	assert.False(t, d.Keep())
}

// TestStrictBucketStampsOutOfOrder: the shards stamp their decisions each
// with its own clock read, so a decision may be stamped behind the one
// before it. The strict bucket moved its clock back to such a stamp, and
// refilled that interval a second time at the next: at 1.2 times the rate,
// with every other stamp 50 ms behind, it kept everything. It keeps at
// most r·t + B now, however the stamps come.
func TestStrictBucketStampsOutOfOrder(t *testing.T) {
	const rate, secs = 1000, 20
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	const period = int64(time.Second / 1200) // demand 1.2 times the rate
	n := int(secs * time.Second / time.Duration(period))
	for _, lag := range []time.Duration{0, 200 * time.Microsecond, time.Millisecond, 50 * time.Millisecond} {
		e := newEngine(t, sampling.NewPolicyConfig("limit", "rate_limiting", &sampling.RateLimitingConfig{
			SpansPerSecond: rate, BurstCapacity: rate, Mode: sampling.LimitStrict,
		}))
		rng := rand.New(rand.NewPCG(9, 10))
		kept := 0
		for i := range n {
			tr := sampling.Trace{SpanCount: 1}
			tr.SetIdentity(randomID(rng), nil)
			tr.Now = base + int64(i)*period
			if i%2 == 1 {
				tr.Now -= int64(lag)
			}
			if e.Decide(&tr).Keep() {
				kept++
			}
		}
		assert.LessOrEqual(t, kept, rate*secs+rate, "odd stamps %v behind", lag)
		assert.Greater(t, kept, rate*secs*95/100, "odd stamps %v behind: the rate is still spent", lag)
	}
}
