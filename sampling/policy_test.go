package sampling_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

func TestStatusCodePolicy(t *testing.T) {
	const (
		unset = sampling.StatusUnsetBit
		ok    = sampling.StatusOKBit
		errb  = sampling.StatusErrorBit
	)
	tests := []struct {
		codes []string
		mask  uint8
		keep  bool
	}{
		{[]string{"ERROR"}, errb, true},
		{[]string{"ERROR"}, unset | errb, true},
		{[]string{"ERROR"}, ok | unset, false},
		{[]string{"ERROR"}, 0, false},
		{[]string{"OK"}, ok, true},
		{[]string{"OK"}, errb, false},
		{[]string{"UNSET"}, unset, true},
		{[]string{"UNSET"}, ok | errb, false},
		{[]string{"ERROR", "OK"}, ok, true},
		{[]string{"ERROR", "OK"}, errb, true},
		{[]string{"ERROR", "OK"}, unset, false},
		{[]string{"OK", "ERROR", "UNSET"}, unset, true},
		{[]string{"OK", "ERROR", "UNSET"}, 0, false},
		{[]string{"ERROR", "ERROR"}, errb, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/mask=%03b", tt.codes, tt.mask), func(t *testing.T) {
			e := newEngine(t, statusPolicy("s", tt.codes...))
			tr := traceWith(traceID(1), "")
			tr.StatusMask = tt.mask
			d := e.Decide(tr)
			assert.Equal(t, tt.keep, d.Keep())
			if tt.keep {
				assert.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold)
				assert.Equal(t, "s", d.Policy)
				assert.Equal(t, 1.0, d.Probability())
			} else {
				assert.Equal(t, sampling.Decision{}, d)
			}
		})
	}
}

func TestLatencyPolicy(t *testing.T) {
	const base = uint64(1_700_000_000_000_000_000)
	tests := []struct {
		name         string
		lower, upper int64
		start, end   uint64
		keep         bool
	}{
		// contrib's TestEvaluate_Latency (5000, 0) and
		// TestEvaluate_Bounded_Latency (5000, 10000).
		{"contrib: shorter than threshold", 5000, 0, base, base + 4500*ms, false},
		{"contrib: equal to threshold", 5000, 0, base, base + 5000*ms, false},
		{"contrib: spans shorter, trace longer", 5000, 0, base, base + 5500*ms, true},
		{"contrib bounded: shorter than lower", 5000, 10000, base, base + 4500*ms, false},
		{"contrib bounded: equal to lower", 5000, 10000, base, base + 5000*ms, false},
		{"contrib bounded: within", 5000, 10000, base, base + 5001*ms, true},
		{"contrib bounded: above upper", 5000, 10000, base, base + 10001*ms, false},
		{"contrib bounded: equal to upper", 5000, 10000, base, base + 10000*ms, true},
		{"contrib bounded: spans shorter, trace within", 5000, 10000, base, base + 5500*ms, true},
		// Whole milliseconds, truncated, as contrib's Duration.Milliseconds.
		{"just below lower+1ms", 100, 0, base, base + 101*ms - 1, false},
		{"at lower+1ms", 100, 0, base, base + 101*ms, true},
		{"far above lower", 100, 0, base, base + 3600_000*ms, true},
		{"zero duration", 100, 0, base, base, false},
		{"end before start", 100, 0, base + 500*ms, base, false},
		{"no timestamps", 100, 0, 0, 0, false},
		{"window: upper truncated", 100, 200, base, base + 201*ms - 1, true},
		{"window: above upper", 100, 200, base, base + 201*ms, false},
		{"window: equal bounds keep nothing", 100, 100, base, base + 100*ms, false},
		{"upper only: zero", 0, 50, base, base, false},
		{"upper only: 1 ms", 0, 50, base, base + ms, true},
		{"upper only: at upper", 0, 50, base, base + 50*ms, true},
		{"no bounds: longer than 0 ms", 0, 0, base, base + ms, true},
		{"no bounds: under 1 ms", 0, 0, base, base + ms - 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, latencyPolicy("slow", tt.lower, tt.upper))
			tr := traceWith(traceID(1), "")
			tr.Start, tr.End = tt.start, tt.end
			d := e.Decide(tr)
			assert.Equal(t, tt.keep, d.Keep(), "duration %d ns", tr.Duration())
			if tt.keep {
				assert.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold)
				assert.Equal(t, "slow", d.Policy)
			}
		})
	}
}

func TestTraceDuration(t *testing.T) {
	tests := []struct {
		start, end, want uint64
	}{
		{0, 0, 0},
		{10, 10, 0},
		{10, 25, 15},
		{25, 10, 0},
		{0, math.MaxUint64, math.MaxUint64},
	}
	for _, tt := range tests {
		tr := sampling.Trace{Start: tt.start, End: tt.end}
		assert.Equal(t, tt.want, tr.Duration(), "start %d end %d", tt.start, tt.end)
	}
}

func TestProbabilisticThreshold(t *testing.T) {
	for _, pct := range []float64{0.01, 1, 10, 25, 50, 99.9, 100} {
		t.Run(fmt.Sprint(pct), func(t *testing.T) {
			e := newEngine(t, probPolicy("p", pct))
			// The largest randomness is kept at every percentage.
			d := e.Decide(traceWith(traceID(1<<56-1), ""))
			require.True(t, d.Keep())
			assert.Equal(t, probTh(t, pct/100), d.Threshold)
			assert.InEpsilon(t, pct/100, d.Probability(), 1e-9)
			assert.Equal(t, "p", d.Policy)
			if pct == 100 {
				assert.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold)
				assert.True(t, e.Decide(traceWith(traceID(0), "")).Keep(), "100 % keeps randomness 0")
			} else {
				assert.False(t, e.Decide(traceWith(traceID(0), "")).Keep(), "randomness 0 is dropped below 100 %")
			}
		})
	}
}

func TestProbabilisticBoundary(t *testing.T) {
	// At 50 % the threshold is 0x80000000000000: keep iff randomness >= it.
	e := newEngine(t, probPolicy("half", 50))
	tests := []struct {
		rnd  uint64
		keep bool
	}{
		{0x80000000000000, true},
		{0x7fffffffffffff, false},
		{0x80000000000001, true},
		{0, false},
		{0xffffffffffffff, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.keep, e.Decide(traceWith(traceID(tt.rnd), "")).Keep(), "trace id randomness %x", tt.rnd)
		rv := fmt.Sprintf("ot=rv:%014x", tt.rnd)
		assert.Equal(t, tt.keep, e.Decide(traceWith(traceID(0), rv)).Keep(), "explicit %s", rv)
	}
}

func TestProbabilisticConsistency(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	a := newEngine(t, probPolicy("p", 10))
	b := newEngine(t, probPolicy("other name", 10)) // a second collector
	wider := newEngine(t, probPolicy("p", 50))
	kept := 0
	for range 20000 {
		id := randomID(rng)
		d := a.Decide(traceWith(id, ""))
		require.Equal(t, d.Keep(), a.Decide(traceWith(id, "")).Keep(), "same engine, same trace")
		require.Equal(t, d.Keep(), b.Decide(traceWith(id, "")).Keep(), "another engine, same trace")
		if d.Keep() {
			kept++
			require.True(t, wider.Decide(traceWith(id, "")).Keep(), "kept at 10 %% but dropped at 50 %%: %x", id)
		}
		// Only the low 56 bits matter: bytes 0..8 do not change the decision.
		other := id
		for i := range 9 {
			other[i] = ^other[i]
		}
		require.Equal(t, d.Keep(), a.Decide(traceWith(other, "")).Keep(), "%x vs %x", id, other)
	}
	require.Positive(t, kept)
}

func TestProbabilisticExplicitRandomness(t *testing.T) {
	lowID := traceID(0)          // randomness 0: dropped below 100 %
	highID := traceID(1<<56 - 1) // largest randomness: always kept
	tests := []struct {
		name       string
		id         [16]byte
		tracestate string
		pct        float64
		keep       bool
	}{
		{"low id, no rv", lowID, "", 50, false},
		{"low id, high rv", lowID, "ot=rv:ffffffffffffff", 1, true},
		{"low id, high rv among other keys", lowID, "a=b,ot=th:0;rv:ffffffffffffff;x:y,c=d", 1, true},
		{"high id, no rv", highID, "", 1, true},
		{"high id, low rv", highID, "ot=rv:00000000000000", 50, false},
		{"high id, low rv, 100 %", highID, "ot=rv:00000000000000", 100, true},
		{"high id, rv just below 10 %", highID, fmt.Sprintf("ot=rv:%014x", probTh(t, 0.1).Unsigned()-1), 10, false},
		{"high id, rv at 10 %", highID, fmt.Sprintf("ot=rv:%014x", probTh(t, 0.1).Unsigned()), 10, true},
		{"invalid rv is ignored", highID, "ot=rv:zz", 50, true},
		{"short rv is ignored", lowID, "ot=rv:ffff", 50, false},
		{"rv of another vendor is ignored", lowID, "other=rv:ffffffffffffff", 50, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, probPolicy("p", tt.pct))
			assert.Equal(t, tt.keep, e.Decide(traceWith(tt.id, tt.tracestate)).Keep())
		})
	}
}

// TestProbabilisticFraction checks the kept fraction of random trace IDs is
// within 4 standard deviations of the configured probability.
func TestProbabilisticFraction(t *testing.T) {
	const n = 200_000
	rng := rand.New(rand.NewPCG(2024, 42))
	ids := make([][16]byte, n)
	for i := range ids {
		ids[i] = randomID(rng)
	}
	for _, pct := range []float64{1, 10, 50} {
		t.Run(fmt.Sprintf("%v%%", pct), func(t *testing.T) {
			e := newEngine(t, probPolicy("p", pct))
			kept := 0
			var tr sampling.Trace
			for _, id := range ids {
				tr.SetIdentity(id, nil)
				if e.Decide(&tr).Keep() {
					kept++
				}
			}
			p := probTh(t, pct/100).Probability()
			sigma := math.Sqrt(n * p * (1 - p))
			t.Logf("kept %d of %d, expected %.0f ± %.0f", kept, n, n*p, sigma)
			assert.InDelta(t, n*p, float64(kept), 4*sigma)
		})
	}
}

// TestLatencyHugeThreshold: a threshold too large for nanoseconds in a uint64
// is refused by Validate, naming the key.
func TestLatencyHugeThreshold(t *testing.T) {
	const hugeMs = 18_446_744_073_710 // × 1e6 ns would wrap around 2^64 to 448,384 ns
	for _, tc := range []struct {
		c   sampling.LatencyConfig
		key string
	}{
		{sampling.LatencyConfig{ThresholdMs: hugeMs}, "threshold_ms"},
		{sampling.LatencyConfig{ThresholdMs: 1, UpperThresholdMs: hugeMs}, "upper_threshold_ms"},
		{sampling.LatencyConfig{ThresholdMs: math.MaxInt64}, "threshold_ms"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.c), func(t *testing.T) {
			p := sampling.NewPolicyConfig("huge", "latency", &tc.c)
			err := p.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "latency: "+tc.key+": must be at most")
		})
	}
}
