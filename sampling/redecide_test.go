package sampling

import (
	"math"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The state a decision can change, per stateful policy, as plain values to
// compare: what Decide then Redecide leave must be what Decide alone
// leaves, plus the charge of a keep where Redecide's rule asks for one.

type bucketState struct {
	Tokens float64
	Last   int64
}

type compositeState struct {
	Second  int64
	Sampled []int64
	Subs    []any
}

type dynamicState struct {
	Counts             map[uint64]int64
	Thresholds         map[uint64]uint64
	NoRoot, Overflow   int64
	Total, NKeys, Next int64
	Burst              int64
}

type shareState struct {
	Tokens, Demand float64
	Last           int64
}

type adaptiveState struct {
	Keys        map[uint64]keyState
	Count       int64
	Own, Kept   uint64
	Observed    bool
	Level       int32
	Next, Start int64
}

func stateOf(p evaluator) any {
	switch p := p.(type) {
	case *limiter:
		if p.share != nil {
			return shareState{p.share.tokens, p.share.demand, p.share.last}
		}
		return bucketState{p.bucket.tokens, p.bucket.last}
	case *composite:
		s := compositeState{Second: p.second}
		for i := range p.subs {
			s.Sampled = append(s.Sampled, p.subs[i].sampled)
			s.Subs = append(s.Subs, stateOf(p.subs[i].policy))
		}
		return s
	case and:
		var s []any
		for _, sub := range p.subs {
			s = append(s, stateOf(sub))
		}
		return s
	case *dynamic:
		s := dynamicState{
			Counts: map[uint64]int64{}, Thresholds: map[uint64]uint64{},
			NoRoot: p.noRoot.count.Load(), Overflow: p.overflow.count.Load(),
			Total: p.total.Load(), NKeys: p.keys.count.Load(), Next: p.next.Load(), Burst: p.burst.Load(),
		}
		for i := range p.keys.stripes {
			for h, k := range p.keys.stripes[i].data {
				s.Counts[h], s.Thresholds[h] = k.count.Load(), k.th.Load()
			}
		}
		return s
	case *adaptive:
		s := adaptiveState{
			Keys: map[uint64]keyState{}, Count: p.table.count.Load(),
			Own: p.controller.own.Load(), Kept: p.controller.kept.Load(),
			Observed: p.controller.observed.Load(), Level: p.controller.level.Load(),
			Next: p.controller.next.Load(), Start: p.start.Load(),
		}
		for i := range p.table.stripes {
			for _, k := range p.table.stripes[i].data.keys {
				s.Keys[k.hash] = k
			}
		}
		return s
	}
	return nil // stateless
}

// engineState is the state of e's policies and of its budget's classes.
func engineState(e *Engine) []any {
	var s []any
	for _, p := range e.policies {
		s = append(s, stateOf(p))
	}
	if e.budget != nil {
		for i := range e.budget.classes {
			s = append(s, e.budget.classes[i].count.Load())
		}
	}
	return s
}

func redecideEngine(t *testing.T, budget BudgetConfig, cfgs ...PolicyConfig) *Engine {
	t.Helper()
	for i := range cfgs {
		require.NoError(t, cfgs[i].Validate())
	}
	e, err := NewEngine(cfgs, WithBudget(budget))
	require.NoError(t, err)
	return e
}

const (
	sec = int64(time.Second)
	ms  = uint64(time.Millisecond)
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// redecideTrace is a trace of spans spans and duration dur at now, with key
// slot 0 set to key (keyed policies), all of its randomness kept by any
// threshold.
func redecideTrace(now int64, spans int, dur uint64, key uint64) *Trace {
	tr := &Trace{Now: now, SpanCount: spans, SizeBytes: uint64(spans) * 100, KeySet: 1, StatusMask: StatusOKBit}
	tr.ID[15] = 1
	tr.Randomness, _ = otelsampling.UnsignedToRandomness(math.MaxUint64 >> 8)
	tr.Keys[0] = key
	tr.Start = uint64(now) - dur
	tr.End = uint64(now)
	return tr
}

func TestRedecideLeavesStateAsOneDecide(t *testing.T) {
	rate := func(name string, perSec, burst int64) PolicyConfig {
		return NewPolicyConfig(name, "rate_limiting", &RateLimitingConfig{SpansPerSecond: perSec, BurstCapacity: burst, Mode: LimitStrict})
	}
	errors := NewPolicyConfig("errors", "status_code", &StatusCodeConfig{StatusCodes: []string{"ERROR"}})
	adaptiveCfg := defaultAdaptiveConfig()
	adaptiveCfg.RareKeyWarmup = time.Hour // no key is rare: the trace is not an anomaly
	dynamicCfg := defaultDynamicConfig().(*DynamicConfig)
	dynamicCfg.GoalTracesPerSecond = 1

	tests := []struct {
		name   string
		budget BudgetConfig
		cfgs   []PolicyConfig
		// before prepares both engines (e.g. drains a bucket).
		before func(e *Engine)
		// first is the trace as Decide sees it; grow changes it before
		// Redecide, which decides at first.Now + later.
		spans      int
		grow       func(tr *Trace)
		later      int64
		keepFirst  bool
		keepSecond bool
		// charge applies to the Decide-only engine the charge Redecide's
		// keep makes, if any.
		charge func(e *Engine, tr *Trace)
	}{
		{
			name: "rate_limiting admitted at Decide is not charged again", cfgs: []PolicyConfig{rate("rate", 10, 10)},
			spans: 6, grow: addSpans(1), keepFirst: true, keepSecond: true,
		},
		{
			name: "rate_limiting refused at Decide is charged once when Redecide keeps",
			cfgs: []PolicyConfig{rate("rate", 10, 10)}, before: drain(6),
			spans: 6, grow: addSpans(0), later: sec, keepFirst: false, keepSecond: true,
			charge: func(e *Engine, tr *Trace) { e.policies[0].(*limiter).charge(tr) },
		},
		{
			name: "rate_limiting is not charged when Redecide drops",
			cfgs: []PolicyConfig{NewPolicyConfig("and", "and", &AndConfig{SubPolicies: []PolicyConfig{
				rate("rate", 10, 10),
				NewPolicyConfig("slow", "latency", &LatencyConfig{ThresholdMs: 1000}),
			}})},
			before: drainAnd(6), spans: 6, grow: addSpans(0), later: sec, keepFirst: false, keepSecond: false,
		},
		{
			name:  "consistent rate_limiting admitted at Decide is not charged again",
			cfgs:  []PolicyConfig{NewPolicyConfig("rate", "rate_limiting", &RateLimitingConfig{SpansPerSecond: 10, BurstCapacity: 10})},
			spans: 6, grow: addSpans(1), keepFirst: true, keepSecond: true,
		},
		{
			name:  "bytes_limiting admitted at Decide is not charged again",
			cfgs:  []PolicyConfig{NewPolicyConfig("bytes", "bytes_limiting", &BytesLimitingConfig{BytesPerSecond: 1000, BurstCapacity: 1000, Mode: LimitStrict})},
			spans: 6, grow: addSpans(1), keepFirst: true, keepSecond: true,
		},
		{
			name: "composite counted at Decide is not counted again",
			cfgs: []PolicyConfig{NewPolicyConfig("composite", "composite", &CompositeConfig{
				MaxTotalSpansPerSecond: 10, Mode: LimitStrict,
				SubPolicies: []PolicyConfig{NewPolicyConfig("all", "always_sample", nil)},
			})},
			spans: 6, grow: addSpans(1), keepFirst: true, keepSecond: true,
		},
		{
			name: "composite over its allocation at Decide is counted once when Redecide keeps",
			cfgs: []PolicyConfig{NewPolicyConfig("composite", "composite", &CompositeConfig{
				MaxTotalSpansPerSecond: 10, Mode: LimitStrict,
				SubPolicies: []PolicyConfig{NewPolicyConfig("all", "always_sample", nil)},
			})},
			before: fillComposite(6), spans: 6, grow: addSpans(0), later: sec, keepFirst: false, keepSecond: true,
			charge: func(e *Engine, tr *Trace) { e.policies[0].(*composite).count(0, tr, true) },
		},
		{
			name:  "dynamic counts the trace once",
			cfgs:  []PolicyConfig{NewPolicyConfig("dynamic", "dynamic", dynamicCfg), errors},
			spans: 3, grow: addError, later: sec, keepFirst: true, keepSecond: true,
		},
		{
			name:  "adaptive models the trace once; its controller counts the keep once",
			cfgs:  []PolicyConfig{NewPolicyConfig("adaptive", "adaptive", adaptiveCfg), errors},
			spans: 3, grow: addError, later: sec, keepFirst: false, keepSecond: true,
			charge: func(e *Engine, _ *Trace) { e.policies[0].(*adaptive).controller.kept.Add(1) },
		},
		{
			name:   "budget counts demand once",
			budget: BudgetConfig{TracesPerSecond: 100},
			cfgs:   []PolicyConfig{NewPolicyConfig("all", "always_sample", nil)},
			spans:  3, grow: addSpans(1), keepFirst: true, keepSecond: true,
		},
		{
			name:   "budget counts demand when Redecide's policies keep what Decide's did not",
			budget: BudgetConfig{TracesPerSecond: 100},
			cfgs:   []PolicyConfig{errors},
			spans:  3, grow: addError, keepFirst: false, keepSecond: true,
			charge: func(e *Engine, _ *Trace) { e.budget.classes[0].count.Add(1) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			once := redecideEngine(t, tt.budget, tt.cfgs...)  // Decide only
			twice := redecideEngine(t, tt.budget, tt.cfgs...) // Decide, then Redecide
			trOnce := redecideTrace(t0, tt.spans, 10*ms, 42)
			trTwice := redecideTrace(t0, tt.spans, 10*ms, 42)
			if tt.before != nil {
				tt.before(once)
				tt.before(twice)
			}
			require.Equal(t, tt.keepFirst, once.Decide(trOnce).Keep(), "Decide")
			require.Equal(t, tt.keepFirst, twice.Decide(trTwice).Keep(), "Decide")
			require.Equal(t, engineState(once), engineState(twice), "after Decide")

			trTwice.Now += tt.later
			tt.grow(trTwice)
			d := twice.Redecide(trTwice)
			require.Equal(t, tt.keepSecond, d.Keep(), "Redecide")
			if tt.charge != nil {
				tt.charge(once, trTwice)
			}
			assert.Equal(t, engineState(once), engineState(twice), "after Redecide")

			// A third decision changes nothing more.
			twice.Redecide(trTwice)
			assert.Equal(t, engineState(once), engineState(twice), "after a second Redecide")
		})
	}
}

func addSpans(n int) func(*Trace) {
	return func(tr *Trace) { tr.SpanCount += n; tr.SizeBytes += uint64(n) * 100 }
}

func addError(tr *Trace) {
	tr.SpanCount++
	tr.StatusMask |= StatusErrorBit
}

// drain takes n spans from the engine's first policy, a rate_limiting, at
// t0.
func drain(n int) func(e *Engine) {
	return func(e *Engine) { e.policies[0].(*limiter).bucket.take(t0, int64(n)) }
}

// drainAnd drains the rate_limiting under the engine's first policy, an and.
func drainAnd(n int) func(e *Engine) {
	return func(e *Engine) { e.policies[0].(and).subs[0].(*limiter).bucket.take(t0, int64(n)) }
}

// fillComposite counts n spans in the first sub-policy of the engine's
// first policy, a composite, at t0.
func fillComposite(n int) func(e *Engine) {
	return func(e *Engine) {
		e.policies[0].(*composite).count(0, &Trace{Now: t0, SpanCount: n}, true)
	}
}

// TestDecideForgetsEarlierTraces: Decide is a first decision even on a
// reused Trace, so the memory Redecide relies on does not leak from one
// trace to the next.
func TestDecideForgetsEarlierTraces(t *testing.T) {
	e := redecideEngine(t, BudgetConfig{},
		NewPolicyConfig("rate", "rate_limiting", &RateLimitingConfig{SpansPerSecond: 10, BurstCapacity: 10, Mode: LimitStrict}))
	tr := redecideTrace(t0, 4, 10*ms, 1)
	require.True(t, e.Decide(tr).Keep())
	require.True(t, e.Decide(tr).Keep()) // charged again: 8 of 10
	assert.False(t, e.Decide(tr).Keep(), "a third Decide finds 2 tokens for 4 spans")
	bucket := e.policies[0].(*limiter).bucket
	assert.InDelta(t, 2.0, bucket.tokens, 1e-9)
}
