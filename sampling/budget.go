package sampling

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// BudgetConfig caps what the engine keeps, in traces or spans per second,
// shared among priority classes of policies. It is off when both rates are
// zero (the block absent).
//
// A kept trace belongs to the class of highest priority among the policies
// that sample it (in rule mode, the rule's). Each class's demand, what its
// policies keep before the budget and the classes before it do not, is
// measured over time; the classes take from the budget in order, each what
// it demands or what is left, and the next takes what the one before left
// unused:
//
//	alloc_c = min(demand_c, remaining); p_c = alloc_c / demand_c; remaining -= alloc_c
//
// A trace of class c, kept by its policies with probability q, is then kept
// with probability q·p_c, consistently (on its randomness), and carries the
// threshold of q·p_c. Where the sets of randomness values of policies of
// different classes overlap, a trace's class depends on its randomness;
// the budget then keeps the fraction p_c of each class's part of the kept
// set, and marks the probability of what it keeps (budget_split.go). A
// class marked NeverDrop keeps all its traces (p = 1) but still uses up the
// budget.
type BudgetConfig struct {
	// SpansPerSecond caps the kept spans per second; 0 when unused.
	SpansPerSecond float64 `mapstructure:"spans_per_second"`
	// TracesPerSecond caps the kept traces per second; 0 when unused.
	// Exactly one of the two is set when the budget is on.
	TracesPerSecond float64 `mapstructure:"traces_per_second"`
	// Classes in priority order. Default: one class per policy, named after
	// it, in policy order. When set, every policy that can keep a trace
	// (all but those of type drop) is in exactly one class.
	Classes []BudgetClass `mapstructure:"classes"`
	// DropErrors lets the budget drop traces with an error span like any
	// other of their class. By default (false) such a trace is never dropped
	// by the budget, whichever class keeps it; it still counts against it.
	DropErrors bool `mapstructure:"drop_errors"`
}

// BudgetClass is a priority class of a budget.
type BudgetClass struct {
	// Name identifies the class in ClassProbabilities.
	Name string `mapstructure:"name"`
	// Policies are the names of the policies whose kept traces are the
	// class's; a trace that policies of several classes keep is the first
	// such class's.
	Policies []string `mapstructure:"policies"`
	// NeverDrop: the budget never drops this class's traces; they still
	// count against the budget, ahead of the classes after it.
	NeverDrop bool `mapstructure:"never_drop"`
	// prevent unkeyed literal initialization
	_ struct{}
}

// Enabled reports whether the budget is on.
func (b *BudgetConfig) Enabled() bool { return b.SpansPerSecond != 0 || b.TracesPerSecond != 0 }

// ValidateBudget checks a budget against the policies it classifies,
// naming the failing key from the top of the configuration
// (budget::classes::1::policies::0: ...). It does what a Validate method on
// BudgetConfig would, and more, since the policies are needed: call it from
// the Validate of the struct that holds both.
func ValidateBudget(b *BudgetConfig, policies []PolicyConfig) error {
	for _, r := range []struct {
		key string
		v   float64
	}{{"spans_per_second", b.SpansPerSecond}, {"traces_per_second", b.TracesPerSecond}} {
		if r.v < 0 || math.IsNaN(r.v) || math.IsInf(r.v, 0) {
			return fmt.Errorf("budget::%s: must be a finite number, not negative, got %v", r.key, r.v)
		}
	}
	if b.SpansPerSecond > 0 && b.TracesPerSecond > 0 {
		return errors.New("budget: set only one of spans_per_second and traces_per_second")
	}
	if !b.Enabled() {
		if len(b.Classes) > 0 {
			return errors.New("budget: classes are set but neither spans_per_second nor traces_per_second")
		}
		return nil
	}
	byName := make(map[string]int, len(policies))
	for i := range policies {
		byName[policies[i].Name] = i
	}
	classNames := make(map[string]int, len(b.Classes))
	classOf := make(map[string]int, len(policies))
	for i := range b.Classes {
		c := &b.Classes[i]
		if c.Name == "" {
			return fmt.Errorf("budget::classes::%d::name: must not be empty", i)
		}
		if j, dup := classNames[c.Name]; dup {
			return fmt.Errorf("budget::classes::%d::name: %q is already used by budget::classes::%d", i, c.Name, j)
		}
		classNames[c.Name] = i
		if len(c.Policies) == 0 {
			return fmt.Errorf("budget::classes::%d::policies: must list at least one policy", i)
		}
		for j, name := range c.Policies {
			pi, ok := byName[name]
			if !ok {
				return fmt.Errorf("budget::classes::%d::policies::%d: no policy named %q", i, j, name)
			}
			if policies[pi].Type == "drop" {
				return fmt.Errorf("budget::classes::%d::policies::%d: policy %q is of type drop and keeps no trace", i, j, name)
			}
			if k, dup := classOf[name]; dup {
				return fmt.Errorf("budget::classes::%d::policies::%d: policy %q is already in budget::classes::%d", i, j, name, k)
			}
			classOf[name] = i
		}
	}
	if len(b.Classes) > 0 {
		for i := range policies {
			if _, ok := classOf[policies[i].Name]; !ok && policies[i].Type != "drop" {
				return fmt.Errorf("budget::classes: policy %q (policies::%d) is in no class", policies[i].Name, i)
			}
		}
	}
	return nil
}

// Option configures NewEngine.
type Option func(*engineOptions)

type engineOptions struct {
	budget     BudgetConfig
	firstMatch bool
	rootConds  []string
	rules      []RuleConfig // WithRules
}

// WithFirstMatch makes the engine decide as contrib's tail_sampling does
// with sample_on_first_match: the first policy that samples a trace keeps
// it, and the policies after it are not evaluated (they learn nothing and
// charge nothing). Unlike contrib, whose threshold is then that policy's
// even when a later one would keep the trace with a higher probability
// (its README warns about it), the engine asks the later policies for
// their thresholds without letting them learn or charge, as Redecide does,
// and marks the most permissive: the kept traces count right.
func WithFirstMatch(on bool) Option {
	return func(o *engineOptions) { o.firstMatch = on }
}

// WithBudget applies a budget to the engine's decisions; a budget that is
// not Enabled changes nothing.
func WithBudget(b BudgetConfig) Option {
	return func(o *engineOptions) { o.budget = b }
}

// ClassProbability is a budget class's current state, for metrics.
type ClassProbability struct {
	// Name is the class's name.
	Name string
	// Probability is p_c, the probability the budget keeps the class's
	// traces with, on top of their policies' (1 for a NeverDrop class).
	Probability float64
	// Demand is the class's measured demand, in the budget's unit (traces
	// or spans) per second, before the budget.
	Demand float64
}

// HasBudget reports whether the engine applies a budget.
func (e *Engine) HasBudget() bool { return e.budget != nil }

// ClassProbabilities appends each budget class's current probability and
// demand to dst, in priority order, and returns the extended slice; nothing
// when the engine has no budget. It is safe to call concurrently with
// Decide, e.g. from a metrics callback; with a reused dst it allocates
// nothing.
func (e *Engine) ClassProbabilities(dst []ClassProbability) []ClassProbability {
	if e.budget == nil {
		return dst
	}
	for i := range e.budget.classes {
		c := &e.budget.classes[i]
		dst = append(dst, ClassProbability{
			Name:        c.name,
			Probability: math.Float64frombits(c.p.Load()),
			Demand:      math.Float64frombits(c.demandBits.Load()),
		})
	}
	return dst
}

// BudgetRate is the budget's configured rate, in its unit (traces or spans)
// per second; 0 when the engine has no budget.
func (e *Engine) BudgetRate() float64 {
	if e.budget == nil {
		return 0
	}
	return e.budget.rate
}

// SetBudgetRate sets the rate the budget shares among its classes, in place
// of the configured one, from its next adjustment on (within a second): a
// gateway of a cluster whose budget is the whole cluster's sets its share
// of it. A negative or NaN rate counts as 0. It does nothing when the
// engine has no budget, and is safe to call concurrently with Decide.
func (e *Engine) SetBudgetRate(rate float64) {
	if e.budget == nil {
		return
	}
	if !(rate > 0) {
		rate = 0
	}
	e.budget.effective.Store(math.Float64bits(rate))
}

// BudgetEffectiveRate is the rate the budget shares among its classes now,
// in its unit per second: the configured rate, or this gateway's share of
// it when a cluster shares the budget (SetBudgetRate). 0 when the engine
// has no budget. Safe to call concurrently with Decide.
func (e *Engine) BudgetEffectiveRate() float64 {
	if e.budget == nil {
		return 0
	}
	return math.Float64frombits(e.budget.effective.Load())
}

// BudgetDemand is the budget's measured demand at now (Unix nanoseconds, as
// Trace.Now), summed over its classes, in its unit per second: what the
// policies keep before the budget. It folds in the windows that ended
// before now, so that the demand of a gateway that stopped keeping traces
// decays as its traffic does. 0 when the engine has no budget. Safe to call
// concurrently with Decide.
func (e *Engine) BudgetDemand(now int64) float64 {
	if e.budget == nil {
		return 0
	}
	if next := e.budget.next.Load(); next != 0 && now >= next {
		e.budget.adjust(now)
	}
	var d float64
	for i := range e.budget.classes {
		d += math.Float64frombits(e.budget.classes[i].demandBits.Load())
	}
	return d
}

// Budget timing: demand is counted over windows of budgetWindow and
// smoothed with an EMA giving the newest window budgetWeight, so the demand
// follows a change with a time constant of about 3.5 windows.
const (
	budgetWindow = time.Second
	budgetWeight = 0.25
)

type budgetClass struct {
	name      string
	neverDrop bool
	count     atomic.Uint64 // demand counted in the current window
	p         atomic.Uint64 // float64 bits of p_c
	// demandBits is the float64 bits of demand, for ClassProbabilities.
	demandBits atomic.Uint64
	demand     float64 // per second; owned by adjust, under budget.mu
	seeded     bool
	_          [24]byte // keep classes on separate cache lines
}

type budget struct {
	spans      bool          // the unit is spans, else traces
	dropErrors bool          // budget.drop_errors
	rate       float64       // per second, as configured
	effective  atomic.Uint64 // float64 bits of the rate adjust allots; SetBudgetRate
	classOf    []int         // class of each policy index, -1 for none
	classes    []budgetClass

	next atomic.Int64 // Trace.Now from which the next adjustment is due; 0: not started
	mu   sync.Mutex   // held by adjust
	last int64
}

// newBudget builds the budget of cfg for the given policies; nil when off.
func newBudget(cfg *BudgetConfig, policies []PolicyConfig) (*budget, error) {
	if err := ValidateBudget(cfg, policies); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	b := &budget{spans: cfg.SpansPerSecond > 0, rate: cfg.SpansPerSecond + cfg.TracesPerSecond, dropErrors: cfg.DropErrors}
	b.effective.Store(math.Float64bits(b.rate))
	b.classOf = make([]int, len(policies))
	for i := range b.classOf {
		b.classOf[i] = -1
	}
	classes := cfg.Classes
	if len(classes) == 0 {
		for i := range policies {
			if policies[i].Type != "drop" {
				classes = append(classes, BudgetClass{Name: policies[i].Name, Policies: []string{policies[i].Name}})
			}
		}
	}
	b.classes = make([]budgetClass, len(classes))
	for ci := range classes {
		c := &b.classes[ci]
		c.name, c.neverDrop = classes[ci].Name, classes[ci].NeverDrop
		c.p.Store(math.Float64bits(1))
		for _, name := range classes[ci].Policies {
			for pi := range policies {
				if policies[pi].Name == name {
					b.classOf[pi] = ci
				}
			}
		}
	}
	return b, nil
}

// count counts t in class ci's demand, unless an earlier decision did,
// and recomputes the classes' probabilities when due (not in Redecide).
// It returns false when ci is no class (a policy in none).
func (b *budget) count(t *Trace, ci int) bool {
	if ci < 0 {
		return false
	}
	if !t.counted {
		w := uint64(1)
		if b.spans {
			w = uint64(max(t.SpanCount, 1))
		}
		b.classes[ci].count.Add(w)
		t.counted = true
	}
	if next := b.next.Load(); !t.redo && (next == 0 || t.Now >= next) {
		b.adjust(t.Now)
	}
	return true
}

// thin takes a trace the policies keep with the conditional threshold q
// on randomness rnd, whose class ci does not depend on rnd (budget.take):
// it counts the trace in ci's demand and returns the threshold of q·p_c
// and whether rnd passes it.
func (b *budget) thin(t *Trace, ci int, q otelsampling.Threshold, rnd otelsampling.Randomness) (otelsampling.Threshold, bool) {
	if !b.count(t, ci) {
		return q, true
	}
	c := &b.classes[ci]
	if c.neverDrop || (!b.dropErrors && t.StatusMask&StatusErrorBit != 0) {
		return q, true
	}
	p := math.Float64frombits(c.p.Load())
	if p >= 1 {
		return q, true
	}
	th, err := otelsampling.ProbabilityToThreshold(max(q.Probability()*p, otelsampling.MinSamplingProbability))
	if err != nil || otelsampling.ThresholdLessThan(th, q) {
		// Rounding must not make q·p more permissive than q.
		th = q
	}
	return th, t.Scale(th).ShouldSample(rnd)
}

// adjust folds the window's counts into each class's demand and recomputes
// the classes' probabilities. One caller at a time does it.
func (b *budget) adjust(now int64) {
	if !b.mu.TryLock() {
		return
	}
	defer b.mu.Unlock()
	next := b.next.Load()
	if next == 0 {
		// Cold start: every class keeps p = 1 for the first window.
		b.last = now
		b.next.Store(now + int64(budgetWindow))
		return
	}
	if now < next {
		return
	}
	elapsed := max(now-b.last, 1)
	secs := float64(elapsed) / float64(time.Second)
	// A window of several seconds (no kept trace for a while) decays the
	// old demand as that many windows would.
	alpha := 1 - math.Pow(1-budgetWeight, float64(elapsed)/float64(budgetWindow))
	remaining := math.Float64frombits(b.effective.Load())
	for i := range b.classes {
		c := &b.classes[i]
		r := float64(c.count.Swap(0)) / secs
		if c.seeded {
			c.demand = alpha*r + (1-alpha)*c.demand
		} else if r > 0 {
			c.demand, c.seeded = r, true
		}
		c.demandBits.Store(math.Float64bits(c.demand))
		alloc := min(c.demand, remaining)
		remaining -= alloc
		var p float64
		switch {
		case c.neverDrop:
			p = 1
		case c.demand <= 0:
			// No demand measured: whatever comes is kept while budget
			// is left, until the next window measures it.
			p = 1
			if remaining <= 0 {
				p = otelsampling.MinSamplingProbability
			}
		default:
			p = max(alloc/c.demand, otelsampling.MinSamplingProbability)
		}
		c.p.Store(math.Float64bits(p))
	}
	b.last = now
	b.next.Store(now + int64(budgetWindow))
}
