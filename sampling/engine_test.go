package sampling_test

import (
	"math/rand/v2"
	"sync"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

func TestEngineOrder(t *testing.T) {
	e := newEngine(t,
		statusPolicy("errors", "ERROR"),
		latencyPolicy("slow", 1000, 0),
		probPolicy("sample", 10),
	)
	assert.Equal(t, []string{"errors", "slow", "sample"}, e.Names())

	p10 := probTh(t, 0.1)
	tests := []struct {
		name      string
		mask      uint8
		duration  uint64
		rnd       uint64
		keep      bool
		policy    string
		threshold otelsampling.Threshold
	}{
		{"error and slow: first wins", sampling.StatusErrorBit, 2000 * ms, 0, true, "errors", otelsampling.AlwaysSampleThreshold},
		{"error, fast", sampling.StatusErrorBit | sampling.StatusOKBit, 1, 0, true, "errors", otelsampling.AlwaysSampleThreshold},
		{"slow only", sampling.StatusOKBit, 1001 * ms, 0, true, "slow", otelsampling.AlwaysSampleThreshold},
		{"slow and sampled: slow wins", sampling.StatusOKBit, 5000 * ms, 1<<56 - 1, true, "slow", otelsampling.AlwaysSampleThreshold},
		{"sampled only", sampling.StatusUnsetBit, 10 * ms, 1<<56 - 1, true, "sample", p10},
		{"nothing matches", sampling.StatusUnsetBit, 10 * ms, 0, false, "", otelsampling.Threshold{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := traceWith(traceID(tt.rnd), "")
			tr.StatusMask = tt.mask
			tr.Start, tr.End = 1_000_000, 1_000_000+tt.duration
			d := e.Decide(tr)
			assert.Equal(t, tt.keep, d.Keep())
			assert.Equal(t, tt.policy, d.Policy)
			assert.Equal(t, tt.threshold, d.Threshold)
			if !tt.keep {
				assert.Equal(t, sampling.Decision{}, d)
				assert.Zero(t, d.Probability())
			}
		})
	}
}

func TestEngineHeadThreshold(t *testing.T) {
	e := newEngine(t, statusPolicy("errors", "ERROR"), probPolicy("sample", 10))
	p10 := probTh(t, 0.1)
	high := traceID(1<<56 - 1) // kept by every probability
	tests := []struct {
		name       string
		tracestate string
		mask       uint8
		keep       bool
		policy     string
		threshold  otelsampling.Threshold
	}{
		{"no head: always", "", sampling.StatusErrorBit, true, "errors", otelsampling.AlwaysSampleThreshold},
		{"head 50 % is stricter than always", "ot=th:8", sampling.StatusErrorBit, true, "errors", th(t, "8")},
		{"head 25 % with other keys", "vendor=x,ot=th:c;rv:ffffffffffffff", sampling.StatusErrorBit, true, "errors", th(t, "c")},
		{"head 100 % keeps always", "ot=th:0", sampling.StatusErrorBit, true, "errors", otelsampling.AlwaysSampleThreshold},
		// A trace head-sampled at p and kept at q is marked p·q.
		{"head 50 % then 10 % is 5 %", "ot=th:8", sampling.StatusUnsetBit, true, "sample", probTh(t, 0.05)},
		{"head 6.25 % then 10 % is 0.625 %", "ot=th:f", sampling.StatusUnsetBit, true, "sample", probTh(t, 0.00625)},
		{"head 10 % then 10 % is 1 %", "ot=th:" + p10.TValue(), sampling.StatusUnsetBit, true, "sample", probTh(t, 0.01)},
		{"unparsable head is ignored", "ot=th:xyz", sampling.StatusErrorBit, true, "errors", otelsampling.AlwaysSampleThreshold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := traceWith(high, tt.tracestate)
			tr.StatusMask = tt.mask
			d := e.Decide(tr)
			assert.Equal(t, tt.keep, d.Keep())
			assert.Equal(t, tt.policy, d.Policy)
			assert.InEpsilon(t, tt.threshold.Probability(), d.Probability(), 1e-9, "want th:%s, got th:%s", tt.threshold.TValue(), d.Threshold.TValue())
		})
	}

	// A dropped trace carries no threshold, head or not.
	tr := traceWith(traceID(0), "ot=th:8")
	tr.StatusMask = sampling.StatusUnsetBit
	assert.Equal(t, sampling.Decision{}, e.Decide(tr))
}

func TestEngineEmptyAndErrors(t *testing.T) {
	e, err := sampling.NewEngine(nil)
	require.NoError(t, err)
	assert.Equal(t, sampling.Decision{}, e.Decide(traceWith(traceID(1), "")))
	assert.Empty(t, e.Names())

	_, err = sampling.NewEngine([]sampling.PolicyConfig{statusPolicy("ok", "OK"), sampling.NewPolicyConfig("x", "nope", nil)})
	require.EqualError(t, err, `policies::1::type: unknown policy type "nope"`)

	// Unvalidated settings still fail at construction where they cannot work.
	_, err = sampling.NewEngine([]sampling.PolicyConfig{probPolicy("p", 0)})
	require.EqualError(t, err, "policies::0 (p): sampling_percentage: sampling probability out of the range [1/MaxAdjustedCount, 1]")
	_, err = sampling.NewEngine([]sampling.PolicyConfig{statusPolicy("s", "BAD")})
	require.EqualError(t, err, `policies::0 (s): unknown status code "BAD" (want OK, ERROR or UNSET)`)
}

func TestEngineConcurrentDecide(t *testing.T) {
	e := newEngine(t, statusPolicy("errors", "ERROR"), latencyPolicy("slow", 10, 0), probPolicy("p", 25))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var tr sampling.Trace
			for range 2000 {
				tr.SetIdentity(randomID(rng), []byte("ot=th:8"))
				tr.StatusMask = uint8(rng.IntN(8))
				tr.Start, tr.End = 0, rng.Uint64N(20*ms)
				d := e.Decide(&tr)
				if d.Keep() && d.Policy == "" {
					t.Error("kept without a policy")
				}
			}
		})
	}
	wg.Wait()
}

func TestDecideDoesNotAllocate(t *testing.T) {
	for name, cfgs := range map[string][]sampling.PolicyConfig{
		"status_code":   {statusPolicy("s", "ERROR")},
		"latency":       {latencyPolicy("l", 100, 0)},
		"probabilistic": {probPolicy("p", 10)},
		"chain":         {statusPolicy("s", "ERROR"), latencyPolicy("l", 100, 500), probPolicy("p", 10)},
	} {
		e := newEngine(t, cfgs...)
		rng := rand.New(rand.NewPCG(1, 1))
		tr := traceWith(randomID(rng), "ot=th:c")
		allocs := testing.AllocsPerRun(1000, func() {
			tr.StatusMask ^= sampling.StatusErrorBit
			tr.End += 37 * ms
			_ = e.Decide(tr)
		})
		assert.Zero(t, allocs, name)
	}
}

// TestDecisionKeepIsVerdict: whether a decision keeps its trace is its
// verdict, so the two cannot disagree (they were separate fields, and a
// Decision{Verdict: Sampled} read as not kept).
func TestDecisionKeepIsVerdict(t *testing.T) {
	for v := sampling.NotSampled; v <= sampling.InvertNotSampled; v++ {
		t.Run(v.String(), func(t *testing.T) {
			d := sampling.Decision{Verdict: v, Threshold: otelsampling.AlwaysSampleThreshold}
			assert.Equal(t, v == sampling.Sampled, d.Keep())
			if v == sampling.Sampled {
				assert.InDelta(t, 1.0, d.Probability(), 0)
			} else {
				assert.Zero(t, d.Probability())
			}
		})
	}
}
