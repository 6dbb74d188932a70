package sampling_test

import (
	"math"
	"math/rand/v2"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/sampling"
)

// budgetConfig holds policies and a budget the way the buffer's config does.
type budgetConfig struct {
	Policies []sampling.PolicyConfig `mapstructure:"policies"`
	Budget   sampling.BudgetConfig   `mapstructure:"budget"`
}

func (c *budgetConfig) Validate() error {
	if err := sampling.ValidatePolicies(c.Policies); err != nil {
		return err
	}
	return sampling.ValidateBudget(&c.Budget, c.Policies)
}

func loadBudget(t *testing.T, snippet string) (*budgetConfig, error) {
	t.Helper()
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(snippet), &raw))
	var cfg budgetConfig
	return &cfg, confmap.NewFromStringMap(raw).Unmarshal(&cfg)
}

const budgetPolicies = `
policies:
  - {name: errors,    type: status_code,   status_code:   {status_codes: [ERROR]}}
  - {name: slow,      type: latency,       latency:       {threshold_ms: 500}}
  - {name: anomalies, type: latency,       latency:       {threshold_ms: 5000}}
  - {name: baseline,  type: probabilistic, probabilistic: {sampling_percentage: 10}}
  - {name: dynamic,   type: dynamic,       dynamic:       {goal_traces_per_second: 50}}
`

func TestBudgetConfig(t *testing.T) {
	cfg, err := loadBudget(t, budgetPolicies+`
budget:
  traces_per_second: 200
  classes:
    - {name: errors,    policies: [errors],    never_drop: true}
    - {name: slow,      policies: [slow]}
    - {name: anomalies, policies: [anomalies]}
    - {name: rest,      policies: [baseline, dynamic]}
`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, sampling.BudgetConfig{
		TracesPerSecond: 200,
		Classes: []sampling.BudgetClass{
			{Name: "errors", Policies: []string{"errors"}, NeverDrop: true},
			{Name: "slow", Policies: []string{"slow"}},
			{Name: "anomalies", Policies: []string{"anomalies"}},
			{Name: "rest", Policies: []string{"baseline", "dynamic"}},
		},
	}, cfg.Budget)
	e, err := sampling.NewEngine(cfg.Policies, sampling.WithBudget(cfg.Budget))
	require.NoError(t, err)
	assert.Equal(t, []sampling.ClassProbability{
		{Name: "errors", Probability: 1}, {Name: "slow", Probability: 1},
		{Name: "anomalies", Probability: 1}, {Name: "rest", Probability: 1},
	}, e.ClassProbabilities(nil), "every class keeps all before the first window")

	// Without classes: one per policy, in policy order.
	cfg, err = loadBudget(t, budgetPolicies+`budget: {spans_per_second: 5000}`)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	e, err = sampling.NewEngine(cfg.Policies, sampling.WithBudget(cfg.Budget))
	require.NoError(t, err)
	var names []string
	for _, c := range e.ClassProbabilities(nil) {
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{"errors", "slow", "anomalies", "baseline", "dynamic"}, names)

	// Without the block: off.
	cfg, err = loadBudget(t, budgetPolicies)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	assert.False(t, cfg.Budget.Enabled())
	e, err = sampling.NewEngine(cfg.Policies, sampling.WithBudget(cfg.Budget))
	require.NoError(t, err)
	assert.Empty(t, e.ClassProbabilities(nil))
}

func TestBudgetConfigInvalid(t *testing.T) {
	classes := func(s string) string { return "budget: {traces_per_second: 100, classes: " + s + "}" }
	tests := []struct {
		name, yaml string
		unmarshal  string // a part of the error of Unmarshal, when it fails
		validate   string // the error of confmap.Validate
	}{
		{name: "both rates", yaml: `budget: {traces_per_second: 1, spans_per_second: 10}`,
			validate: "budget: set only one of spans_per_second and traces_per_second"},
		{name: "negative traces", yaml: `budget: {traces_per_second: -1}`,
			validate: "budget::traces_per_second: must be a finite number, not negative, got -1"},
		{name: "negative spans", yaml: `budget: {spans_per_second: -5}`,
			validate: "budget::spans_per_second: must be a finite number, not negative, got -5"},
		{name: "infinite", yaml: `budget: {spans_per_second: .inf}`,
			validate: "budget::spans_per_second: must be a finite number, not negative, got +Inf"},
		{name: "NaN", yaml: `budget: {traces_per_second: .nan}`,
			validate: "budget::traces_per_second: must be a finite number, not negative, got NaN"},
		{name: "classes without a rate", yaml: `budget: {classes: [{name: a, policies: [errors]}]}`,
			validate: "budget: classes are set but neither spans_per_second nor traces_per_second"},
		{name: "unnamed class", yaml: classes(`[{name: a, policies: [errors]}, {policies: [slow]}]`),
			validate: "budget::classes::1::name: must not be empty"},
		{name: "duplicate class", yaml: classes(`[{name: a, policies: [errors]}, {name: a, policies: [slow]}]`),
			validate: `budget::classes::1::name: "a" is already used by budget::classes::0`},
		{name: "class without policies", yaml: classes(`[{name: a, policies: []}]`),
			validate: "budget::classes::0::policies: must list at least one policy"},
		{name: "unknown policy", yaml: classes(`[{name: a, policies: [errors]}, {name: b, policies: [x]}]`),
			validate: `budget::classes::1::policies::0: no policy named "x"`},
		{name: "policy in two classes", yaml: classes(`[{name: a, policies: [errors, slow]}, {name: b, policies: [anomalies, slow]}]`),
			validate: `budget::classes::1::policies::1: policy "slow" is already in budget::classes::0`},
		{name: "policy twice in a class", yaml: classes(`[{name: a, policies: [errors, errors]}]`),
			validate: `budget::classes::0::policies::1: policy "errors" is already in budget::classes::0`},
		{name: "policy in no class", yaml: classes(`[{name: a, policies: [errors, slow, anomalies, dynamic]}]`),
			validate: `budget::classes: policy "baseline" (policies::3) is in no class`},
		{name: "unknown key", yaml: `budget: {traces_per_second: 1, tps: 2}`,
			unmarshal: "has invalid keys: tps"},
		{name: "unknown class key", yaml: classes(`[{name: a, policy: [errors]}]`),
			unmarshal: "has invalid keys: policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadBudget(t, budgetPolicies+tt.yaml)
			if tt.unmarshal != "" {
				require.ErrorContains(t, err, tt.unmarshal)
				return
			}
			require.NoError(t, err)
			require.EqualError(t, confmap.Validate(cfg), tt.validate)
			_, err = sampling.NewEngine(cfg.Policies, sampling.WithBudget(cfg.Budget))
			require.EqualError(t, err, tt.validate, "NewEngine refuses it too")
		})
	}
}

// Trace kinds of the budget workloads, one per class of budgetEngine.
const (
	kindError = iota // kept by "errors" (q = 1)
	kindSlow         // kept by "slow" (q = 1)
	kindRest         // kept by "baseline" at its percentage
	numKinds
)

func budgetEngine(t testing.TB, b sampling.BudgetConfig, baselinePct float64) *sampling.Engine {
	t.Helper()
	cfgs := []sampling.PolicyConfig{
		statusPolicy("errors", "ERROR"),
		latencyPolicy("slow", 500, 0),
		probPolicy("baseline", baselinePct),
	}
	require.NoError(t, sampling.ValidateBudget(&b, cfgs))
	e, err := sampling.NewEngine(cfgs, sampling.WithBudget(b))
	require.NoError(t, err)
	return e
}

func threeClasses(neverDropErrors bool) []sampling.BudgetClass {
	return []sampling.BudgetClass{
		{Name: "errors", Policies: []string{"errors"}, NeverDrop: neverDropErrors},
		{Name: "slow", Policies: []string{"slow"}},
		{Name: "rest", Policies: []string{"baseline"}},
	}
}

// kindTrace fills tr as a trace of the given kind decided at now.
func kindTrace(tr *sampling.Trace, rng *rand.Rand, kind int, now int64, head string) {
	tr.SetIdentity(randomID(rng), []byte(head))
	tr.SpanCount, tr.Now = 10, now
	tr.StatusMask = sampling.StatusOKBit
	tr.Start = 1_700_000_000_000_000_000
	tr.End = tr.Start + 10*ms
	switch kind {
	case kindError:
		tr.StatusMask = sampling.StatusErrorBit
	case kindSlow:
		tr.End = tr.Start + 800*ms
	}
}

// runKinds decides rates[k] traces of each kind per second for secs seconds
// from start, evenly interleaved, and returns the kept count per kind.
func runKinds(e *sampling.Engine, rng *rand.Rand, start int64, secs int, rates [numKinds]int) [numKinds]int {
	var kept [numKinds]int
	var tr sampling.Trace
	total := rates[0] + rates[1] + rates[2]
	for s := range secs {
		// Interleave: the i-th trace of the second is of the kind whose
		// quota is furthest behind.
		var done [numKinds]int
		for i := range total {
			kind := 0
			for k := 1; k < numKinds; k++ {
				if float64(done[k]+1)/float64(rates[k]+1) < float64(done[kind]+1)/float64(rates[kind]+1) {
					kind = k
				}
			}
			done[kind]++
			kindTrace(&tr, rng, kind, start+int64(s)*sec+int64(i)*sec/int64(total), "")
			if e.Decide(&tr).Keep() {
				kept[kind]++
			}
		}
	}
	return kept
}

func classP(e *sampling.Engine) map[string]sampling.ClassProbability {
	m := map[string]sampling.ClassProbability{}
	for _, c := range e.ClassProbabilities(nil) {
		m[c.Name] = c
	}
	return m
}

// TestBudgetAllocation checks that classes take from the budget in order and
// that what one leaves flows down to the next.
func TestBudgetAllocation(t *testing.T) {
	tests := []struct {
		name      string
		budget    sampling.BudgetConfig
		rates     [numKinds]int // per second, before the policies
		wantP     [numKinds]float64
		wantKept  float64 // per second, after the budget
		neverDrop bool
	}{
		{
			// Demand: errors 20, slow 30, rest 10% of 10000 = 1000; the
			// rest gets what errors and slow leave: 50 of 1000.
			name:   "rest gets the remainder",
			budget: sampling.BudgetConfig{TracesPerSecond: 100},
			rates:  [numKinds]int{20, 30, 10000},
			wantP:  [numKinds]float64{1, 1, 0.05}, wantKept: 100,
		},
		{
			name:   "budget above demand",
			budget: sampling.BudgetConfig{TracesPerSecond: 2000},
			rates:  [numKinds]int{20, 30, 10000},
			wantP:  [numKinds]float64{1, 1, 1}, wantKept: 1050,
		},
		{
			// Errors alone exceed the budget: they take it all, slow and
			// rest get the smallest probability there is.
			name:   "errors take everything",
			budget: sampling.BudgetConfig{TracesPerSecond: 100, DropErrors: true},
			rates:  [numKinds]int{200, 30, 1000},
			wantP:  [numKinds]float64{0.5, otelsampling.MinSamplingProbability, otelsampling.MinSamplingProbability}, wantKept: 100,
		},
		{
			// By default (drop_errors false) a trace with an error span
			// is never dropped by the budget, whatever its class's p.
			name:   "errors over budget are kept by default",
			budget: sampling.BudgetConfig{TracesPerSecond: 100},
			rates:  [numKinds]int{200, 30, 1000},
			wantP:  [numKinds]float64{0.5, otelsampling.MinSamplingProbability, otelsampling.MinSamplingProbability}, wantKept: 200,
		},
		{
			// The same with never_drop: errors are all kept, over budget.
			name:      "never_drop errors over budget",
			budget:    sampling.BudgetConfig{TracesPerSecond: 100},
			neverDrop: true,
			rates:     [numKinds]int{200, 30, 1000},
			wantP:     [numKinds]float64{1, otelsampling.MinSamplingProbability, otelsampling.MinSamplingProbability}, wantKept: 200,
		},
		{
			// Spans: 10 per trace, so 1000 spans/s is 100 traces/s.
			name:   "spans",
			budget: sampling.BudgetConfig{SpansPerSecond: 1000},
			rates:  [numKinds]int{20, 30, 10000},
			wantP:  [numKinds]float64{1, 1, 0.05}, wantKept: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.budget
			b.Classes = threeClasses(tt.neverDrop)
			e := budgetEngine(t, b, 10)
			rng := rand.New(rand.NewPCG(21, 22))
			runKinds(e, rng, 0, 20, tt.rates)
			ps := classP(e)
			for k, name := range []string{"errors", "slow", "rest"} {
				assert.InEpsilon(t, tt.wantP[k], ps[name].Probability, 0.03, name)
			}
			kept := runKinds(e, rng, 20*sec, 20, tt.rates)
			total := float64(kept[0] + kept[1] + kept[2])
			assert.InEpsilon(t, tt.wantKept*20, total, 0.05, "kept over 20 s: %v", kept)
		})
	}
}

// TestBudgetDemand checks the measured demand, with decay: it follows a
// change of rate within seconds.
func TestBudgetDemand(t *testing.T) {
	e := budgetEngine(t, sampling.BudgetConfig{TracesPerSecond: 100, Classes: threeClasses(true)}, 10)
	rng := rand.New(rand.NewPCG(23, 24))
	runKinds(e, rng, 0, 10, [numKinds]int{20, 30, 10000})
	ps := classP(e)
	assert.InEpsilon(t, 20, ps["errors"].Demand, 0.05)
	assert.InEpsilon(t, 30, ps["slow"].Demand, 0.05)
	assert.InEpsilon(t, 1000, ps["rest"].Demand, 0.05)
	// Slow traces stop: their demand decays by 3/4 a second, and what slow
	// no longer takes goes to the rest.
	runKinds(e, rng, 10*sec, 20, [numKinds]int{20, 0, 10000})
	ps = classP(e)
	assert.Less(t, ps["slow"].Demand, 0.2)
	assert.InEpsilon(t, 0.08, ps["rest"].Probability, 0.03)
}

// TestSetBudgetRate: the rate set at runtime (a gateway's share of a
// cluster's budget) replaces the configured one from the next adjustment
// on; BudgetDemand is the classes' demand summed.
func TestSetBudgetRate(t *testing.T) {
	e := budgetEngine(t, sampling.BudgetConfig{TracesPerSecond: 200, Classes: threeClasses(false)}, 10)
	rates := [numKinds]int{0, 0, 10000} // 1000/s kept by baseline before the budget
	rng := rand.New(rand.NewPCG(25, 26))
	assert.InDelta(t, 200, e.BudgetRate(), 0)
	assert.InDelta(t, 200, e.BudgetEffectiveRate(), 0, "the configured rate until one is set")
	runKinds(e, rng, 0, 10, rates)
	assert.InEpsilon(t, 1000, e.BudgetDemand(10*sec), 0.05)
	kept := runKinds(e, rng, 10*sec, 20, rates)
	assert.InEpsilon(t, 200*20, kept[kindRest], 0.05, "the configured rate")

	e.SetBudgetRate(50)
	assert.InDelta(t, 200, e.BudgetRate(), 0, "the configured rate stays")
	assert.InDelta(t, 50, e.BudgetEffectiveRate(), 0, "the rate in effect is the one set")
	runKinds(e, rng, 30*sec, 2, rates)
	kept = runKinds(e, rng, 32*sec, 20, rates)
	assert.InEpsilon(t, 50*20, kept[kindRest], 0.05, "the rate set")

	e.SetBudgetRate(-3)
	runKinds(e, rng, 52*sec, 2, rates)
	kept = runKinds(e, rng, 54*sec, 10, rates)
	assert.Less(t, kept[kindRest], 5, "a negative rate counts as 0")

	// No trace for 10 s: the demand decays all the same.
	before := e.BudgetDemand(64 * sec)
	assert.InEpsilon(t, 1000, before, 0.05)
	assert.Less(t, e.BudgetDemand(74*sec), before*0.2, "an idle gateway's demand decays")
	assert.Less(t, e.BudgetDemand(84*sec), before*0.01)

	off := budgetEngine(t, sampling.BudgetConfig{}, 10)
	off.SetBudgetRate(10)
	assert.Zero(t, off.BudgetRate())
	assert.Zero(t, off.BudgetEffectiveRate())
	assert.Zero(t, off.BudgetDemand(sec))
}

// TestBudgetThreshold checks consistency: a trace of class c kept by its
// policy at q is kept by the budget iff its randomness passes the threshold
// of q·p_c, which it then carries, scaled by a head threshold.
func TestBudgetThreshold(t *testing.T) {
	e := budgetEngine(t, sampling.BudgetConfig{TracesPerSecond: 100, Classes: threeClasses(true)}, 50)
	rng := rand.New(rand.NewPCG(25, 26))
	// Demand 20 + 30 + 50% of 2000: the rest gets 50 of 1000, p = 0.05.
	runKinds(e, rng, 0, 10, [numKinds]int{20, 30, 2000})
	q := probTh(t, 0.5)
	var tr sampling.Trace
	counts := map[string]int{}
	for i := range 2000 {
		head := ""
		if i%2 == 1 {
			head = "ot=th:c" // head-sampled at 1/4
		}
		kindTrace(&tr, rng, kindRest, 10*sec+int64(i)*sec/4000, head)
		d := e.Decide(&tr)
		// The probability Decide used: it adjusts before deciding, and
		// nothing else decides meanwhile.
		p := classP(e)["rest"].Probability
		require.InEpsilon(t, 0.05, p, 0.05)
		qp := probTh(t, 0.5*p)
		switch {
		case !tr.ShouldSample(q):
			assert.Equal(t, sampling.Decision{Verdict: sampling.NotSampled}, d, "the policy does not keep it")
			counts["policy drop"]++
		case !tr.ShouldSample(qp):
			assert.Equal(t, sampling.Decision{Verdict: sampling.NotSampled, Policy: "baseline"}, d,
				"the budget drops it and names the policy")
			counts["budget drop"]++
		default:
			require.True(t, d.Keep())
			assert.Equal(t, tr.Scale(qp), d.Threshold)
			assert.Equal(t, "baseline", d.Policy)
			counts["kept"]++
		}
	}
	for _, k := range []string{"policy drop", "budget drop", "kept"} {
		assert.Positive(t, counts[k], k)
	}
	// A never_drop class keeps its threshold whatever the budget.
	kindTrace(&tr, rng, kindError, 10*sec+sec/2, "ot=th:c")
	d := e.Decide(&tr)
	assert.True(t, d.Keep())
	assert.Equal(t, th(t, "c"), d.Threshold)
}

// TestBudgetOff checks that an engine without a budget decides as before.
func TestBudgetOff(t *testing.T) {
	with := budgetEngine(t, sampling.BudgetConfig{}, 10)
	without := newEngine(t, statusPolicy("errors", "ERROR"), latencyPolicy("slow", 500, 0), probPolicy("baseline", 10))
	rng := rand.New(rand.NewPCG(27, 28))
	var tr sampling.Trace
	for i := range 3000 {
		kindTrace(&tr, rng, i%numKinds, int64(i)*sec/1000, "")
		assert.Equal(t, without.Decide(&tr), with.Decide(&tr))
	}
	assert.Empty(t, with.ClassProbabilities(nil))
}

func TestClassProbabilitiesAllocs(t *testing.T) {
	e := budgetEngine(t, sampling.BudgetConfig{TracesPerSecond: 10, Classes: threeClasses(true)}, 10)
	dst := make([]sampling.ClassProbability, 0, 3)
	allocs := testing.AllocsPerRun(100, func() { dst = e.ClassProbabilities(dst[:0]) })
	assert.Zero(t, allocs)
	assert.Len(t, dst, 3)
	assert.False(t, math.IsNaN(dst[2].Probability))
}
