package sampling

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDynamicStallWhileTaking: an adjustment that stalls while it takes the
// counts (here: it waits for a stripe's lock, held by a caller that is
// adding a key and was descheduled) while the other callers count on for
// five intervals. Before, the counts taken before the stall were measured
// over the interval up to the newest time after it, and the next
// adjustment read the stall's counts, taken after, as those of one
// interval: probabilities 1.7 times too high, then 3.3 times too low,
// coming back over several intervals. Now the counts are taken again when
// the newest time moved on meanwhile: every probability stays that of the
// steady rate.
func TestDynamicStallWhileTaking(t *testing.T) {
	const (
		interval = int64(time.Second)
		keys     = 16  // one per stripe: key k in stripe k
		perKey   = 100 // traces per second
		perSec   = keys * perKey
		tick     = interval / perSec
	)
	ev, err := newDynamic(&DynamicConfig{
		GoalTracesPerSecond: 20, Key: DefaultKeyFields, AdjustmentInterval: time.Second,
		Weight: 0.5, MaxKeys: 100,
	}, &builder{})
	require.NoError(t, err)
	d := ev.(*dynamic)
	trace := func(key, now int64) *Trace {
		tr := &Trace{SpanCount: 1, Now: now}
		var id [16]byte
		binary.BigEndian.PutUint64(id[8:], uint64(now))
		tr.SetIdentity(id, nil)
		tr.Keys[0], tr.KeySet = uint64(key), 1
		return tr
	}
	// feed decides traces of keys [0, n) in turn, perKey a second each,
	// from tick i up to (not including) tick end.
	var i int64
	feed := func(end, n int64) {
		for ; i < end; i++ {
			d.Evaluate(trace(i%n, i*tick))
		}
	}
	prob := func(key uint64) float64 {
		s := d.keys.stripe(key)
		s.mu.RLock()
		defer s.mu.RUnlock()
		th, err := otelsampling.UnsignedToThreshold(s.data[key].th.Load())
		require.NoError(t, err)
		return th.Probability()
	}
	// At the steady rate every key averages 100 a second and gets an equal
	// share of the goal of 20: p = 20/16/100.
	const want = 20.0 / keys / perKey
	feed(10*perSec, keys)
	require.InEpsilon(t, want, prob(1), 0.01)

	// The adjustment due next stalls on stripe 15's lock, having taken the
	// counts of stripes 0 to 14.
	next := d.next.Load()
	feed(next/tick, keys)
	stalled := &d.keys.stripes[keys-1].mu
	stalled.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Evaluate(trace(1, next))
	}()
	for taken := false; !taken; runtime.Gosched() {
		taken = true
		for k := range uint64(keys - 1) {
			s := d.keys.stripe(k)
			s.mu.RLock()
			taken = taken && s.data[k].count.Load() == 0
			s.mu.RUnlock()
		}
	}
	// Five intervals of the other keys' traces meanwhile (key 15's wait
	// for the lock).
	i = next/tick + 1
	feed(i+5*perSec, keys-1)
	stalled.Unlock()
	<-done

	// Then the probabilities of the stalled adjustment and of the next
	// four are those of the steady rate (key 15's, whose traces waited,
	// aside).
	for adjustment := range 5 {
		if adjustment > 0 {
			feed(d.next.Load()/tick+1, keys) // up to the next adjustment, and past it
		}
		for k := range uint64(keys - 1) {
			assert.InEpsilon(t, want, prob(k), 0.05, "key %d, adjustment %d", k, adjustment)
		}
	}
}
