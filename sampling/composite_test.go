package sampling_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

func compositePolicy(name string, maxTotal int64, alloc []sampling.RateAllocationConfig, subs ...sampling.PolicyConfig) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "composite", &sampling.CompositeConfig{
		MaxTotalSpansPerSecond: maxTotal, SubPolicies: subs, RateAllocation: alloc, Mode: sampling.LimitStrict,
	})
}

// tagIn is an ottl_condition standing in for contrib's numeric_attribute
// filter: tag in [0, 100].
func tagIn(name string) sampling.PolicyConfig {
	return ottlPolicy(name, []string{`attributes["tag"] >= 0 and attributes["tag"] <= 100`}, nil)
}

// always is probabilistic at 100 %, standing in for always_sample.
func always(name string) sampling.PolicyConfig { return probPolicy(name, 100) }

// compositeStep is one trace for a composite: decided at now, with a tag
// attribute on its root unless tag is -1, of spans spans, and the verdict
// wanted.
type compositeStep struct {
	now   int64
	tag   int64 // -1: no tag attribute
	spans int
	want  sampling.Verdict
}

func repeat(n int, s compositeStep) []compositeStep {
	out := make([]compositeStep, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Ported from contrib's composite_test.go, with the sub-policies as
// configured policies (numeric_attribute as an ottl_condition, always_sample
// as probabilistic 100 %), the allocations set directly as contrib's tests
// do, and the second taken from Trace.Now.
func TestComposite(t *testing.T) {
	noMatch := compositeStep{now: t0, tag: -1, spans: 1, want: sampling.NotSampled}
	tests := []struct {
		name     string
		maxTotal int64
		subs     []sampling.PolicyConfig
		alloc    []int64
		steps    []compositeStep
	}{
		{
			name:     "not sampled",
			maxTotal: 1000, subs: []sampling.PolicyConfig{tagIn("eval-1"), tagIn("eval-2")}, alloc: []int64{100, 100},
			steps: []compositeStep{noMatch},
		},
		{
			name:     "sampled",
			maxTotal: 1000, subs: []sampling.PolicyConfig{tagIn("eval-1"), always("eval-2")}, alloc: []int64{100, 100},
			steps: []compositeStep{{t0, -1, 1, sampling.Sampled}},
		},
		{
			// The first sub-policy that samples decides, even over its
			// budget: the trace does not fall through to the next.
			name:     "overflow",
			maxTotal: 3, subs: []sampling.PolicyConfig{tagIn("eval-1"), always("eval-2")}, alloc: []int64{1, 1},
			steps: []compositeStep{{t0, 10, 1, sampling.Sampled}, {t0, 11, 1, sampling.NotSampled}, {t0, 1001, 1, sampling.Sampled}},
		},
		{
			name:     "always sampled",
			maxTotal: 10, subs: []sampling.PolicyConfig{tagIn("eval-1"), always("eval-2")}, alloc: []int64{20, 20},
			steps: repeat(10, compositeStep{t0, -1, 1, sampling.Sampled}),
		},
		{
			name:     "throttling",
			maxTotal: 10, subs: []sampling.PolicyConfig{always("eval-1")}, alloc: []int64{10},
			steps: append(append(
				repeat(10, compositeStep{t0, -1, 1, sampling.Sampled}),
				repeat(10, compositeStep{t0, -1, 1, sampling.NotSampled})...),
				repeat(10, compositeStep{t0 + sec, -1, 1, sampling.Sampled})...),
		},
		{
			name:     "two sub-policies throttling",
			maxTotal: 10, subs: []sampling.PolicyConfig{tagIn("eval-1"), always("eval-2")}, alloc: []int64{5, 5},
			steps: concat(
				repeat(5, compositeStep{t0, -1, 1, sampling.Sampled}),
				repeat(5, compositeStep{t0, -1, 1, sampling.NotSampled}),
				repeat(5, compositeStep{t0 + sec, -1, 1, sampling.Sampled}),
				repeat(20, compositeStep{t0 + sec, -1, 1, sampling.NotSampled}),
				repeat(5, compositeStep{t0 + 2*sec, -1, 1, sampling.Sampled}),
			),
		},
		{
			// Counters are per sub-policy: eval-1's traces do not use
			// eval-2's allocation.
			name:     "separate counters",
			maxTotal: 10, subs: []sampling.PolicyConfig{tagIn("eval-1"), always("eval-2")}, alloc: []int64{2, 3},
			steps: concat(
				repeat(2, compositeStep{t0, 5, 1, sampling.Sampled}),
				repeat(1, compositeStep{t0, 5, 1, sampling.NotSampled}),
				repeat(3, compositeStep{t0, -1, 1, sampling.Sampled}),
				repeat(1, compositeStep{t0, -1, 1, sampling.NotSampled}),
			),
		},
		{
			// Spans, not traces, count; a trace that does not fit leaves
			// room for a smaller one.
			name:     "spans count",
			maxTotal: 10, subs: []sampling.PolicyConfig{always("eval-1")}, alloc: []int64{10},
			steps: []compositeStep{
				{t0, -1, 6, sampling.Sampled}, {t0, -1, 5, sampling.NotSampled},
				{t0, -1, 4, sampling.Sampled}, {t0, -1, 1, sampling.NotSampled},
			},
		},
		{
			// An allocation above max_total_spans_per_second is capped by it.
			name:     "max total caps an allocation",
			maxTotal: 3, subs: []sampling.PolicyConfig{always("eval-1")}, alloc: []int64{100},
			steps: []compositeStep{{t0, -1, 3, sampling.Sampled}, {t0, -1, 1, sampling.NotSampled}},
		},
		{
			// Within one second the count goes on, across the second it
			// resets.
			name:     "window is the Unix second of the decision time",
			maxTotal: 2, subs: []sampling.PolicyConfig{always("eval-1")}, alloc: []int64{2},
			steps: []compositeStep{
				{t0 + sec/2, -1, 2, sampling.Sampled}, {t0 + sec - 1, -1, 1, sampling.NotSampled},
				{t0 + sec, -1, 2, sampling.Sampled},
			},
		},
		{
			// Shards decide concurrently: a decision stamped in the previous
			// second counts in the current window instead of resetting it.
			// A clock stepped back further resets, as in contrib.
			name:     "time going backwards",
			maxTotal: 2, subs: []sampling.PolicyConfig{always("eval-1")}, alloc: []int64{2},
			steps: []compositeStep{
				{t0 + 5*sec, -1, 2, sampling.Sampled},
				{t0 + 4*sec, -1, 1, sampling.NotSampled},
				{t0 + 2*sec, -1, 2, sampling.Sampled},
				{t0 + 2*sec, -1, 1, sampling.NotSampled},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.subs...)
			subs := make([]sampling.Policy, len(tt.subs))
			for i := range tt.subs {
				subs[i] = build(t, tt.subs[i])
			}
			p := sampling.CompositeOf(tt.maxTotal, subs, tt.alloc)
			for i, s := range tt.steps {
				var attrs map[string]any
				if s.tag >= 0 {
					attrs = map[string]any{"tag": s.tag}
				}
				specs := make([]spanSpec, s.spans)
				specs[0].attrs = attrs
				tr := samplingtest.Summarize(t, e, traceOf(traceID(uint64(i+1)), specs...), s.now)
				d := p.Evaluate(tr)
				require.Equal(t, s.want, d.Verdict, "step %d", i)
			}
		})
	}
}

func concat(steps ...[]compositeStep) []compositeStep {
	var out []compositeStep
	for _, s := range steps {
		out = append(out, s...)
	}
	return out
}

func TestCompositeVerdicts(t *testing.T) {
	half := sampling.SampledAt(probTh(t, 0.5))
	tests := []struct {
		name string
		subs []sampling.Policy
		want sampling.Decision
	}{
		// TestCompositeEvaluatorInverseSampled_AlwaysSampled: an
		// invert_match filter with no match samples, with probability 1.
		{"invert sampled samples", []sampling.Policy{fixed(notSampled), fixed(invertSampled)}, sampled},
		{"invert not sampled passes on", []sampling.Policy{fixed(invertNotSampled), fixed(half)}, half},
		{"dropped passes on", []sampling.Policy{fixed(dropped), fixed(sampled)}, sampled},
		// The deciding sub-policy's threshold is kept (contrib reports
		// probability 1 for composite).
		{"sub-policy threshold", []sampling.Policy{fixed(half), fixed(sampled)}, half},
		{"nothing samples", []sampling.Policy{fixed(notSampled), fixed(invertNotSampled)}, notSampled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := make([]int64, len(tt.subs))
			for i := range alloc {
				alloc[i] = 20
			}
			p := sampling.CompositeOf(10, tt.subs, alloc)
			for i := range 10 {
				require.Equal(t, tt.want, p.Evaluate(&sampling.Trace{Now: t0, SpanCount: 1}), "trace %d", i)
			}
		})
	}
}

func TestCompositeStopsAtDecidingSubPolicy(t *testing.T) {
	later := &counted{d: sampled}
	p := sampling.CompositeOf(10, []sampling.Policy{fixed(sampled), later}, []int64{1, 10})
	assert.True(t, p.Evaluate(&sampling.Trace{Now: t0, SpanCount: 1}).Keep())
	assert.False(t, p.Evaluate(&sampling.Trace{Now: t0, SpanCount: 1}).Keep())
	assert.Zero(t, later.n.Load())
}

func TestCompositeConcurrent(t *testing.T) {
	// 8 goroutines in one second: exactly the allocation passes.
	p := sampling.CompositeOf(1000, []sampling.Policy{fixed(sampled)}, []int64{100})
	assert.Equal(t, 100, samplingtest.KeptConcurrently(p, t0, 8, 50))
}

// Ported from contrib's composite_helper_test.go: the allocations built from
// rate_allocation.
func TestCompositeAllocations(t *testing.T) {
	lat := func(name string, ms int64) sampling.PolicyConfig { return latencyPolicy(name, ms, 0) }
	tests := []struct {
		name     string
		maxTotal int64
		subs     []sampling.PolicyConfig
		alloc    []sampling.RateAllocationConfig
		want     []int64
	}{
		{
			name:     "valid",
			maxTotal: 1000,
			subs:     []sampling.PolicyConfig{lat("test-composite-policy-1", 100), lat("test-composite-policy-2", 200)},
			alloc:    []sampling.RateAllocationConfig{{Policy: "test-composite-policy-1", Percent: 25}, {Policy: "test-composite-policy-2", Percent: 0}},
			want:     []int64{250, 500},
		},
		{
			name:     "sub-policy omitted from rate_allocation gets the default share",
			maxTotal: 1000,
			subs:     []sampling.PolicyConfig{lat("test-composite-policy-1", 100), lat("test-composite-policy-2", 200)},
			alloc:    []sampling.RateAllocationConfig{{Policy: "test-composite-policy-1", Percent: 25}},
			want:     []int64{250, 500},
		},
		{
			name:     "no rate_allocation: equal shares, truncated",
			maxTotal: 10,
			subs:     []sampling.PolicyConfig{lat("a", 1), lat("b", 2), lat("c", 3)},
			want:     []int64{3, 3, 3},
		},
		{
			// The README's example: 50 % + 25 % of 100, and the default
			// share (a third) for the third.
			name:     "readme example",
			maxTotal: 100,
			subs:     []sampling.PolicyConfig{lat("p1", 1), lat("p2", 2), always("p3")},
			alloc:    []sampling.RateAllocationConfig{{Policy: "p1", Percent: 50}, {Policy: "p2", Percent: 25}},
			want:     []int64{50, 25, 33},
		},
		{
			name:     "fractional share truncated",
			maxTotal: 7,
			subs:     []sampling.PolicyConfig{lat("a", 1), lat("b", 2)},
			alloc:    []sampling.RateAllocationConfig{{Policy: "a", Percent: 33}, {Policy: "b", Percent: 100}},
			want:     []int64{2, 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, compositePolicy("c", tt.maxTotal, tt.alloc, tt.subs...))
			assert.Equal(t, tt.want, sampling.CompositeAllocations(p))
		})
	}
}

func TestCompositeInEngine(t *testing.T) {
	// composite of errors (40 %) and probabilistic 50 % (default share, 50 %)
	// under 10 spans per second.
	e := newEngine(t, compositePolicy("composite", 10,
		[]sampling.RateAllocationConfig{{Policy: "errors", Percent: 40}},
		statusPolicy("errors", "ERROR"), probPolicy("half", 50)))
	failed := func(i int) ptrace.Traces {
		return traceOf(traceID(uint64(i)), spanSpec{status: ptrace.StatusCodeError})
	}
	for i := range 4 {
		d := decide(t, e, failed(i), t0)
		require.True(t, d.Keep(), strconv.Itoa(i))
		assert.Equal(t, "composite", d.Policy)
	}
	assert.False(t, decide(t, e, failed(5), t0).Keep())

	okTrace := func(rnd uint64) ptrace.Traces { return traceOf(traceID(rnd), spanSpec{status: ptrace.StatusCodeOk}) }
	assert.False(t, decide(t, e, okTrace(1), t0).Keep(), "below the 50 % threshold")
	for i := range 5 {
		d := decide(t, e, okTrace(1<<56-1-uint64(i)), t0)
		require.True(t, d.Keep(), strconv.Itoa(i))
		assert.Equal(t, probTh(t, 0.5), d.Threshold)
	}
	assert.False(t, decide(t, e, okTrace(1<<56-100), t0).Keep(), "half's 5 spans are spent")
	assert.True(t, decide(t, e, failed(6), t0+sec).Keep(), "next second")
}
