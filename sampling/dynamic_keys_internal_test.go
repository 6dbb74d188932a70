package sampling

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDynamicKeyCap: with a key per trace (a high-cardinality key, 1000
// traces/s) the table never holds more than max_keys keys, the traces
// that find no room share the overflow key, and the kept rate still holds
// near the goal after a warm-up.
func TestDynamicKeyCap(t *testing.T) {
	const (
		maxKeys = 100
		perSec  = 1000
		goal    = 10.0
		secs    = 70
		warmUp  = 10
	)
	ev, err := newDynamic(&DynamicConfig{
		GoalTracesPerSecond: goal, Key: DefaultKeyFields, AdjustmentInterval: time.Second,
		Weight: 0.5, MaxKeys: maxKeys,
	}, &builder{})
	require.NoError(t, err)
	d := ev.(*dynamic)
	rng := rand.New(rand.NewPCG(5, 6))
	held := func() (n int) {
		for i := range d.keys.stripes {
			n += len(d.keys.stripes[i].data)
		}
		return n
	}
	kept, most := 0, 0
	for i := range int64(secs * perSec) {
		tr := &Trace{SpanCount: 1, Now: i * int64(time.Second) / perSec}
		var id [16]byte
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		tr.SetIdentity(id, nil)
		tr.Keys[0], tr.KeySet = rng.Uint64(), 1
		if d.Evaluate(tr).Verdict == Sampled && i >= warmUp*perSec {
			kept++
		}
		if i%perSec == 0 {
			n := held()
			require.Equal(t, int64(n), d.keys.count.Load(), "the count of keys held is right")
			most = max(most, n)
		}
	}
	assert.LessOrEqual(t, most, maxKeys, "max_keys is honoured")
	rate := float64(kept) / (secs - warmUp)
	t.Logf("at most %d keys held; kept %.1f/s for a goal of %.0f/s", most, rate, goal)
	assert.InEpsilon(t, goal, rate, 0.2)
}
