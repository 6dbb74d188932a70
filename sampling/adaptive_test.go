package sampling_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

const (
	epoch = int64(1_700_000_000) * sec
)

// adaptivePolicy is an adaptive policy named "anomalies" with the defaults
// changed by edit.
func adaptivePolicy(edit func(c *sampling.AdaptiveConfig)) sampling.PolicyConfig {
	c := adaptiveDefaults()
	if edit != nil {
		edit(c)
	}
	return sampling.NewPolicyConfig("anomalies", "adaptive", c)
}

// keyed is a trace whose root span has key hash key (slot 0, the only keyed
// policy in these engines), decided at now, lasting dur, with status bits.
func keyed(rng *rand.Rand, key uint64, now int64, dur uint64, status uint8) *sampling.Trace {
	tr := &sampling.Trace{SpanCount: 1, StatusMask: status, Now: now, KeySet: 1}
	tr.SetIdentity(randomID(rng), nil)
	tr.Keys[0] = key
	tr.End = uint64(now - 5*sec)
	tr.Start = tr.End - dur
	return tr
}

// feed decides n traces of key, one every step from *now (advanced), with
// durations drawn log-normal around median (σ 0.2), and returns how many
// were kept.
func feed(e *sampling.Engine, rng *rand.Rand, key uint64, now *int64, step int64, n int, median float64) int {
	kept := 0
	for range n {
		*now += step
		d := uint64(median * math.Exp(0.2*rng.NormFloat64()))
		if e.Decide(keyed(rng, key, *now, d, sampling.StatusOKBit)).Keep() {
			kept++
		}
	}
	return kept
}

func noRareKeys(c *sampling.AdaptiveConfig) { c.RareKeyObservations = 0 }

func TestAdaptiveLatency(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	e := newEngine(t, statusPolicy("errors", "ERROR"), latencyPolicy("slow", 1000, 0), adaptivePolicy(noRareKeys))
	now := epoch
	const fast, slow = uint64(1), uint64(2) // keys
	require.Zero(t, feed(e, rng, fast, &now, 100*int64(time.Millisecond), 500, 20e6), "no anomaly in the normal traffic")
	require.Zero(t, feed(e, rng, slow, &now, 100*int64(time.Millisecond), 500, 200e6))
	// fast's p95 is about 20 ms·e^(1.645·0.2) = 28 ms: the bar is about 56 ms.
	tests := []struct {
		name string
		key  uint64
		dur  uint64
		keep bool
	}{
		{"fast route at its median", fast, 20 * ms, false},
		{"fast route under the bar", fast, 45 * ms, false},
		{"fast route over the bar, far below the slow rule", fast, 70 * ms, true},
		{"fast route ×5", fast, 100 * ms, true},
		{"slow route: 100 ms is fast for it", slow, 100 * ms, false},
		{"slow route at its median", slow, 200 * ms, false},
		{"slow route ×3", slow, 600 * ms, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now += sec
			d := e.Decide(keyed(rng, tt.key, now, tt.dur, sampling.StatusOKBit))
			assert.Equal(t, tt.keep, d.Keep())
			if tt.keep {
				assert.Equal(t, "anomalies", d.Policy)
				assert.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold, "anomalies within max_share are kept with probability 1")
			}
		})
	}
	t.Run("a trace without a key is not judged", func(t *testing.T) {
		tr := keyed(rng, fast, now, 500*ms, sampling.StatusOKBit)
		tr.KeySet = 0
		assert.False(t, e.Decide(tr).Keep())
	})
	t.Run("a trace without timestamps is not a latency anomaly", func(t *testing.T) {
		tr := keyed(rng, fast, now, 0, sampling.StatusOKBit)
		tr.Start, tr.End = 0, 0
		assert.False(t, e.Decide(tr).Keep())
	})
}

func TestAdaptiveColdStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) {
		noRareKeys(c)
		c.MinObservations = 20
	}))
	// A key never seen is not judged.
	assert.False(t, e.Decide(keyed(rng, 7, epoch, 200*ms, sampling.StatusOKBit)).Keep(), "new key")
	// All at one time, so that counts do not decay: N observations count N.
	now := epoch + 1
	require.Zero(t, feed(e, rng, 7, &now, 0, 18, 10e6))
	// 19 observations: the key is cold, judged against factor² times its
	// lower quartile (4 × 10 ms): 30 ms is not an anomaly, 200 ms is and
	// is not learnt.
	assert.False(t, e.Decide(keyed(rng, 7, now, 30*ms, sampling.StatusOKBit)).Keep(), "cold key, 30 ms")
	assert.True(t, e.Decide(keyed(rng, 7, now, 200*ms, sampling.StatusOKBit)).Keep(), "cold key, 200 ms")
	// 20 observations: judged on the p95; the 30 ms among them does not
	// lift it past 100 ms.
	assert.True(t, e.Decide(keyed(rng, 7, now, 100*ms, sampling.StatusOKBit)).Keep(), "warm key")
	// A key idle for long decays below min_observations: cold again,
	// judged on its lower quartile.
	now += 2 * int64(10*time.Minute)
	assert.False(t, e.Decide(keyed(rng, 7, now, 30*ms, sampling.StatusOKBit)).Keep(), "decayed key, 30 ms")
	assert.True(t, e.Decide(keyed(rng, 7, now, 200*ms, sampling.StatusOKBit)).Keep(), "decayed key, 200 ms")
}

// A trace is judged before the model sees it, so an outlier does not raise
// its own bar: after one 10 ms observation the p95 is about 10 ms, and 100 ms
// is an anomaly; had the model seen it first, its p95 would be about 100 ms.
func TestAdaptiveJudgesBeforeUpdating(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) {
		noRareKeys(c)
		c.MinObservations = 1
	}))
	require.False(t, e.Decide(keyed(rng, 1, epoch, 10*ms, sampling.StatusOKBit)).Keep())
	assert.True(t, e.Decide(keyed(rng, 1, epoch, 100*ms, sampling.StatusOKBit)).Keep())
}

func TestAdaptiveRareKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	decide := func(e *sampling.Engine, key uint64, now int64) bool {
		return e.Decide(keyed(rng, key, now, 10*ms, sampling.StatusOKBit)).Keep()
	}
	t.Run("a new key's first observations are anomalies", func(t *testing.T) {
		e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) { c.RareKeyWarmup = 0 }))
		for i := range 5 {
			assert.True(t, decide(e, 1, epoch), "observation %d", i)
		}
		assert.False(t, decide(e, 1, epoch), "5 observations: no longer rare")
		assert.True(t, decide(e, 2, epoch), "another new key")
		// Counts decay: 5 observations 15 s apart count 4.75 15 s later.
		for i := range 5 {
			decide(e, 3, epoch+int64(i)*15*sec)
		}
		assert.True(t, decide(e, 3, epoch+75*sec), "5 decayed observations: still rare")
	})
	t.Run("a key that turns rare is an anomaly again", func(t *testing.T) {
		e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) { c.RareKeyWarmup = 0 }))
		for range 10 {
			decide(e, 1, epoch)
		}
		require.False(t, decide(e, 1, epoch))
		// Two half-lives later its 11 observations count as 2.75.
		assert.True(t, decide(e, 1, epoch+int64(20*time.Minute)))
	})
	t.Run("no key is new during the warm-up", func(t *testing.T) {
		e := newEngine(t, adaptivePolicy(nil)) // rare_key_warmup: 1m
		assert.False(t, decide(e, 1, epoch), "first trace")
		assert.False(t, decide(e, 2, epoch+59*sec))
		assert.True(t, decide(e, 3, epoch+60*sec), "warm-up over")
		assert.True(t, decide(e, 1, epoch+61*sec), "still rare: 1 observation")
	})
	t.Run("rare_key_observations 0 disables them", func(t *testing.T) {
		e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) {
			noRareKeys(c)
			c.RareKeyWarmup = 0
		}))
		for i := range 100 {
			assert.False(t, decide(e, uint64(i), epoch+int64(i)*sec))
		}
	})
}

func TestAdaptiveErrorRate(t *testing.T) {
	// One trace of the key every 100 ms, 10 ms each; every n-th one erred.
	run := func(e *sampling.Engine, rng *rand.Rand, now *int64, count, every int) (kept, keptOK int) {
		for i := range count {
			*now += 100 * int64(time.Millisecond)
			status := sampling.StatusOKBit
			if every > 0 && i%every == every-1 {
				status = sampling.StatusErrorBit
			}
			if e.Decide(keyed(rng, 1, *now, 10*ms, status)).Keep() {
				kept++
				if status == sampling.StatusOKBit {
					keptOK++
				}
			}
		}
		return kept, keptOK
	}
	tests := []struct {
		name     string
		edit     func(*sampling.AdaptiveConfig)
		baseline int // an error every baseline traces (0: none)
		surge    int // then an error every surge traces
		count    int // for that many traces
		want     bool
	}{
		{"2 % to 50 %", nil, 50, 2, 1200, true},
		{"2 % to 10 %: above 2× but under baseline + floor with margin", nil, 50, 10, 1200, false},
		{"0 to 1 error", nil, 0, 0, 0, false},
		{"0 % to 5 %", nil, 0, 20, 1200, false},
		{"0 % to 34 %", nil, 0, 3, 1200, true},
		{"2 % to 50 % with error_rate_floor 1", func(c *sampling.AdaptiveConfig) { c.ErrorRateFloor = 1 }, 50, 2, 1200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) {
				noRareKeys(c)
				c.MaxShare = 1 // this test is about flagging, not rates
				if tt.edit != nil {
					tt.edit(c)
				}
			}))
			now := epoch
			kept, _ := run(e, rng, &now, 6000, tt.baseline) // 10 minutes
			require.Zero(t, kept, "baseline")
			if tt.count == 0 {
				// A single error after a clean history.
				now += sec
				assert.False(t, e.Decide(keyed(rng, 1, now, 10*ms, sampling.StatusErrorBit)).Keep())
				_, keptOK := run(e, rng, &now, 300, 0)
				assert.Zero(t, keptOK)
				return
			}
			kept, keptOK := run(e, rng, &now, tt.count, tt.surge)
			t.Logf("kept %d of %d surge traces, %d good ones", kept, tt.count, keptOK)
			if !tt.want {
				assert.Zero(t, kept)
				return
			}
			// The key's traces are anomalies while the surge lasts, the
			// good ones as well, once the short window (1 min) has seen it.
			assert.Greater(t, keptOK, tt.count/4, "kept %d", kept)
			assert.Less(t, kept, tt.count)
		})
	}
}

// TestAdaptiveMaxShare floods the engine with anomalies (every trace has a
// new key) while a rule keeps the 10 % that erred. Adaptive's probability p
// must settle where its own kept traces are max_share of all kept: p·0.9 =
// 0.2·(0.1 + p·0.9), p ≈ 0.028; the adjusted count of its kept traces must
// match the anomalies it was given though p changed over time; and once the
// flood stops p must return to 1.
func TestAdaptiveMaxShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	e := newEngine(t, statusPolicy("errors", "ERROR"), adaptivePolicy(func(c *sampling.AdaptiveConfig) {
		c.RareKeyWarmup = 0
		c.MaxKeys = 64
		c.MaxShare = 0.2
	}))
	const (
		perSec = 1000
		step   = sec / perSec
	)
	now := epoch
	var (
		total, kept, own, ownAnomalies int
		adjusted, variance             float64
		thresholds                     = map[otelsampling.Threshold]int{}
	)
	for i := range 120 * perSec {
		now += step
		status := sampling.StatusOKBit
		if i%10 == 0 {
			status = sampling.StatusErrorBit
		}
		d := e.Decide(keyed(rng, rng.Uint64(), now, 10*ms, status))
		if i < 60*perSec {
			continue // the controller settles
		}
		total++
		if status == sampling.StatusOKBit {
			ownAnomalies++
		}
		if !d.Keep() {
			continue
		}
		kept++
		if d.Policy == "anomalies" {
			own++
			thresholds[d.Threshold]++
			p := d.Probability()
			adjusted += 1 / p
			variance += (1 - p) / (p * p)
		}
	}
	share := float64(own) / float64(kept)
	t.Logf("share=%.3f own=%d kept=%d adjusted=%.0f±%.0f of %d, %d thresholds", share, own, kept, adjusted, math.Sqrt(variance), ownAnomalies, len(thresholds))
	assert.InDelta(t, 0.2, share, 0.03, "adaptive's share of the kept traces")
	assert.Greater(t, len(thresholds), 1, "the probability adapts")
	for th := range thresholds {
		assert.InDelta(t, 0.028, th.Probability(), 0.012, "probability %v", th.Probability())
	}
	assert.InDelta(t, float64(ownAnomalies), adjusted, 4*math.Sqrt(variance), "adjusted count of adaptive's anomalies")

	// The flood stops: 16 keys that are known after their first 5 traces,
	// 10 % errors still. The flood's weight halves every 10 s.
	for i := range 90 * perSec {
		now += step
		status := sampling.StatusOKBit
		if i%10 == 0 {
			status = sampling.StatusErrorBit
		}
		e.Decide(keyed(rng, uint64(i%16), now, 10*ms, status))
	}
	d := e.Decide(keyed(rng, rng.Uint64(), now+step, 10*ms, sampling.StatusOKBit))
	assert.True(t, d.Keep())
	assert.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold, "back to probability 1")
}

func TestAdaptiveHeadThreshold(t *testing.T) {
	e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) { c.RareKeyWarmup = 0 }))
	tr := traceWith(traceID(1<<56-1), "ot=th:8") // head-sampled at 1/2
	tr.Now, tr.KeySet, tr.Keys[0] = epoch, 1, 42
	d := e.Decide(tr)
	require.True(t, d.Keep(), "new key")
	assert.Equal(t, probTh(t, 0.5), d.Threshold, "p·q with q = 1")
}

func TestAdaptiveKeyFromRootSpan(t *testing.T) {
	tests := []struct {
		name     string
		key      sampling.KeyFields
		a, b     [2]string // service, span name
		sameKeys bool
	}{
		{"same service and name", nil, [2]string{"cart", "GET /cart"}, [2]string{"cart", "GET /cart"}, true},
		{"other name", nil, [2]string{"cart", "GET /cart"}, [2]string{"cart", "POST /cart"}, false},
		{"other service", nil, [2]string{"cart", "GET /cart"}, [2]string{"shop", "GET /cart"}, false},
		{"key by name only", sampling.KeyFields{"name"}, [2]string{"cart", "GET /cart"}, [2]string{"shop", "GET /cart"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) {
				if tt.key != nil {
					c.Key = tt.key
				}
			}))
			a := samplingtest.Summarize(t, e, oneSpan(tt.a[0], tt.a[1], nil), epoch)
			b := samplingtest.Summarize(t, e, oneSpan(tt.b[0], tt.b[1], nil), epoch)
			require.Equal(t, uint8(1), a.KeySet)
			require.Equal(t, uint8(1), b.KeySet)
			assert.Equal(t, tt.sameKeys, a.Keys[0] == b.Keys[0])
		})
	}
	t.Run("no root, no key", func(t *testing.T) {
		e := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) { c.RareKeyWarmup = 0 }))
		td := oneSpan("cart", "GET /cart", nil)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetParentSpanID(pcommon.SpanID{9})
		tr := samplingtest.Summarize(t, e, td, epoch)
		assert.Zero(t, tr.KeySet)
		assert.False(t, e.Decide(tr).Keep(), "not judged, though a new key would be an anomaly")
		tr = samplingtest.Summarize(t, e, oneSpan("cart", "GET /cart", nil), epoch)
		assert.True(t, e.Decide(tr).Keep(), "the same trace with its root is")
	})
}

// TestAdaptiveConcurrent decides from 4 goroutines on 64 shared keys, as
// shards do, then checks each key's model: run it with -race.
func TestAdaptiveConcurrent(t *testing.T) {
	e := newEngine(t, adaptivePolicy(noRareKeys))
	const (
		keys       = 64
		goroutines = 4
		perG       = 4000
	)
	median := func(key uint64) float64 { return float64(5+key) * 1e6 }
	var clock atomic.Int64
	clock.Store(epoch)
	var (
		wg       sync.WaitGroup
		keptNorm atomic.Int64
	)
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(7, uint64(g)))
			for i := range perG {
				key := uint64(i % keys)
				now := clock.Add(int64(time.Millisecond))
				d := uint64(median(key) * math.Exp(0.2*rng.NormFloat64()))
				if e.Decide(keyed(rng, key, now, d, sampling.StatusOKBit)).Keep() {
					keptNorm.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, keptNorm.Load(), int64(goroutines*perG/1000), "normal traffic is rarely an anomaly")
	rng := rand.New(rand.NewPCG(8, 8))
	for key := range uint64(keys) {
		now := clock.Add(int64(time.Millisecond))
		assert.False(t, e.Decide(keyed(rng, key, now, uint64(median(key)), sampling.StatusOKBit)).Keep(), "key %d at its median", key)
		assert.True(t, e.Decide(keyed(rng, key, now, uint64(4*median(key)), sampling.StatusOKBit)).Keep(), "key %d ×4", key)
	}
}

func TestAdaptiveConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg, err := load(t, `policies: [{name: anomalies, type: adaptive}]`)
		require.NoError(t, err)
		require.NoError(t, confmap.Validate(cfg))
		assert.Equal(t, &sampling.AdaptiveConfig{
			Key:                 sampling.KeyFields{"resource.service.name", "name"},
			Quantile:            0.95,
			Factor:              2,
			HalfLife:            10 * time.Minute,
			MinObservations:     20,
			MaxKeys:             4096,
			RareKeyObservations: 5,
			RareKeyWarmup:       time.Minute,
			ErrorRateWindow:     time.Minute,
			ErrorRateFactor:     2,
			ErrorRateFloor:      0.05,
			MaxShare:            0.25,
			MinRate:             1,
		}, cfg.Policies[0].Settings())
	})
	t.Run("every key", func(t *testing.T) {
		cfg, err := load(t, `
policies:
  - name: anomalies
    type: adaptive
    adaptive:
      key: [resource.service.name, http.route]
      quantile: 0.99
      factor: 3
      half_life: 30m
      min_observations: 50
      max_keys: 10000
      rare_key_observations: 2
      rare_key_warmup: 5m
      error_rate_window: 2m
      error_rate_factor: 3
      error_rate_floor: 0.1
      max_share: 0.5
      min_rate: 0
`)
		require.NoError(t, err)
		require.NoError(t, confmap.Validate(cfg))
		assert.Equal(t, &sampling.AdaptiveConfig{
			Key:                 sampling.KeyFields{"resource.service.name", "http.route"},
			Quantile:            0.99,
			Factor:              3,
			HalfLife:            30 * time.Minute,
			MinObservations:     50,
			MaxKeys:             10000,
			RareKeyObservations: 2,
			RareKeyWarmup:       5 * time.Minute,
			ErrorRateWindow:     2 * time.Minute,
			ErrorRateFactor:     3,
			ErrorRateFloor:      0.1,
			MaxShare:            0.5,
			MinRate:             0,
		}, cfg.Policies[0].Settings())
		_, err = sampling.NewEngine(cfg.Policies)
		require.NoError(t, err)
	})
	t.Run("partial block keeps the other defaults", func(t *testing.T) {
		cfg, err := load(t, `policies: [{name: a, type: adaptive, adaptive: {key: [name], max_share: 0.1}}]`)
		require.NoError(t, err)
		want := adaptiveDefaults()
		want.Key, want.MaxShare = sampling.KeyFields{"name"}, 0.1
		assert.Equal(t, want, cfg.Policies[0].Settings())
	})
}

func TestAdaptiveConfigInvalid(t *testing.T) {
	tests := []struct {
		name, block, err string
	}{
		{"empty key", `{key: []}`, `key: must list at least one field`},
		{"bad key field", `{key: [name, "resource."]}`, `key: 1: "resource." names no attribute`},
		{"quantile 0", `{quantile: 0}`, `quantile: must be in (0, 1), got 0`},
		{"quantile 1", `{quantile: 1}`, `quantile: must be in (0, 1), got 1`},
		{"quantile NaN", `{quantile: .nan}`, `quantile: must be in (0, 1), got NaN`},
		{"factor 1", `{factor: 1}`, `factor: must be a finite number > 1, got 1`},
		{"factor inf", `{factor: .inf}`, `factor: must be a finite number > 1, got +Inf`},
		{"half_life 0", `{half_life: 0s}`, `half_life: must be at least 1s, got 0s`},
		{"min_observations 0", `{min_observations: 0}`, `min_observations: must be at least 1, got 0`},
		{"max_keys 0", `{max_keys: 0}`, `max_keys: must be in [1, 65536], got 0`},
		{"max_keys too many", `{max_keys: 100000}`, `max_keys: must be in [1, 65536], got 100000`},
		{"negative rare_key_observations", `{rare_key_observations: -1}`, `rare_key_observations: must not be negative, got -1`},
		{"rare_key_observations over min_observations", `{rare_key_observations: 30}`, `rare_key_observations: must not exceed min_observations (20), got 30`},
		{"negative rare_key_warmup", `{rare_key_warmup: -1s}`, `rare_key_warmup: must not be negative, got -1s`},
		{"error_rate_window too short", `{error_rate_window: 10ms}`, `error_rate_window: must be at least 1s, got 10ms`},
		{"error_rate_window not shorter than half_life", `{error_rate_window: 10m}`, `error_rate_window: must be shorter than half_life (10m0s), got 10m0s`},
		{"error_rate_factor under 1", `{error_rate_factor: 0.5}`, `error_rate_factor: must be a finite number >= 1, got 0.5`},
		{"error_rate_floor over 1", `{error_rate_floor: 1.5}`, `error_rate_floor: must be in [0, 1], got 1.5`},
		{"negative error_rate_floor", `{error_rate_floor: -0.1}`, `error_rate_floor: must be in [0, 1], got -0.1`},
		{"max_share 0", `{max_share: 0}`, `max_share: must be in (0, 1], got 0`},
		{"max_share over 1", `{max_share: 1.2}`, `max_share: must be in (0, 1], got 1.2`},
		{"negative min_rate", `{min_rate: -1}`, `min_rate: must be a finite number >= 0, got -1`},
		{"min_rate inf", `{min_rate: .inf}`, `min_rate: must be a finite number >= 0, got +Inf`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, `policies: [{name: a, type: adaptive, adaptive: `+tt.block+`}]`)
			require.NoError(t, err)
			require.EqualError(t, confmap.Validate(cfg), "policies::0: adaptive: "+tt.err)
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		_, err := load(t, `policies: [{name: a, type: adaptive, adaptive: {percentile: 0.9}}]`)
		require.EqualError(t, err, decodeErr+`'policies[0]' adaptive: `+decodeErr+`'sampling.AdaptiveConfig' has invalid keys: percentile`)
	})
	t.Run("duration that does not parse", func(t *testing.T) {
		_, err := load(t, `policies: [{name: a, type: adaptive, adaptive: {half_life: soon}}]`)
		require.EqualError(t, err, decodeErr+`'policies[0]' adaptive: `+decodeErr+`'half_life' time: invalid duration`)
	})
}

// Anomalies are not learnt while they are a minority of a key's traffic, so
// a route degraded for a fifth of its traces keeps being flagged; a lasting
// shift (most traces slow) is learnt, and stops being flagged.
func TestAdaptiveContaminationAndShift(t *testing.T) {
	step := 100 * int64(time.Millisecond)
	// max_share 1: every trace flagged is kept.
	flagAll := func(c *sampling.AdaptiveConfig) { noRareKeys(c); c.MaxShare = 1 }
	t.Run("a fifth of the traces slow: still flagged", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		e := newEngine(t, adaptivePolicy(flagAll))
		now := epoch
		require.Zero(t, feed(e, rng, 1, &now, step, 200, 10e6))
		flagged, slow := 0, 0
		for i := range 3000 {
			now += step
			d := 10 * ms
			if i%5 == 0 {
				d, slow = 100*ms, slow+1
			}
			if e.Decide(keyed(rng, 1, now, d, sampling.StatusOKBit)).Keep() {
				flagged++
			}
		}
		assert.Equal(t, slow, flagged)
	})
	t.Run("every trace slow: learnt", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6, 6))
		e := newEngine(t, adaptivePolicy(flagAll))
		now := epoch
		require.Zero(t, feed(e, rng, 1, &now, step, 200, 10e6))
		assert.Equal(t, 100, feed(e, rng, 1, &now, step, 100, 100e6), "a new level is flagged at first")
		during := feed(e, rng, 1, &now, step, 3000, 100e6)
		after := feed(e, rng, 1, &now, step, 100, 100e6)
		t.Logf("flagged %d of the next 3000, %d of the 100 after", during, after)
		assert.Less(t, during, 3000, "the shift is learnt")
		assert.Zero(t, after, "the new level is the baseline")
	})
}

// state_file keeps the model across restarts: an engine built on the saved
// file judges a key it learnt before the restart at once.
func TestAdaptiveStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anomalies.model")
	withFile := func(c *sampling.AdaptiveConfig) { noRareKeys(c); c.MaxShare = 1; c.StateFile = path }
	rng := rand.New(rand.NewPCG(8, 8))
	e := newEngine(t, adaptivePolicy(withFile))
	now := epoch
	require.Zero(t, feed(e, rng, 1, &now, int64(time.Millisecond), 200, 10e6))
	require.NoError(t, e.SaveState())

	restarted := newEngine(t, adaptivePolicy(withFile))
	assert.True(t, restarted.Decide(keyed(rng, 1, now, 100*ms, sampling.StatusOKBit)).Keep(), "the learnt key is judged after a restart")
	assert.False(t, restarted.Decide(keyed(rng, 1, now, 12*ms, sampling.StatusOKBit)).Keep())
	cold := newEngine(t, adaptivePolicy(func(c *sampling.AdaptiveConfig) { noRareKeys(c); c.MaxShare = 1 }))
	assert.False(t, cold.Decide(keyed(rng, 1, now, 100*ms, sampling.StatusOKBit)).Keep(), "without the file the key is new")

	// A file that does not decode is ignored, then overwritten.
	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o600))
	corrupt := newEngine(t, adaptivePolicy(withFile))
	assert.False(t, corrupt.Decide(keyed(rng, 1, now, 100*ms, sampling.StatusOKBit)).Keep(), "cold after a corrupt file")
	require.NoError(t, corrupt.SaveState())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "tsam", string(data[:4]))

	// A model with one key out of range is ignored whole: the keys before
	// it in the file are not learnt either.
	for _, damage := range []func(k []byte){
		func(k []byte) { binary.LittleEndian.PutUint64(k[24:], math.Float64bits(math.NaN())) },
		func(k []byte) { binary.LittleEndian.PutUint64(k[32:], math.Float64bits(-1)) },
		func(k []byte) { binary.LittleEndian.PutUint32(k[24+8*6+4:], math.Float32bits(float32(math.Inf(1)))) },
		func(k []byte) { binary.LittleEndian.PutUint32(k[24+8*6:], 1<<20) },
	} {
		e := newEngine(t, adaptivePolicy(withFile))
		now := epoch
		feed(e, rng, 1, &now, int64(time.Millisecond), 200, 10e6)
		feed(e, rng, 2, &now, int64(time.Millisecond), 200, 10e6)
		require.NoError(t, e.SaveState())
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Len(t, data, 12+2*sampling.ModelKeyBytes)
		damage(data[12+sampling.ModelKeyBytes:])
		require.NoError(t, os.WriteFile(path, data, 0o600))
		damaged := newEngine(t, adaptivePolicy(withFile))
		for _, key := range []uint64{1, 2} {
			assert.False(t, damaged.Decide(keyed(rng, key, now, 100*ms, sampling.StatusOKBit)).Keep(), "key %d cold after a damaged model", key)
		}
	}

	bad := adaptiveDefaults()
	bad.StateFile = filepath.Join(t.TempDir(), "missing", "m")
	assert.ErrorContains(t, bad.Validate(), "state_file: directory")
}
