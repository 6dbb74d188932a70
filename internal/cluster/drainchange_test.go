package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestDrainDecisionsAfterChange: a draining gateway handed every decision
// over, then the member set changes (a gateway joins: it owns some of
// those traces now). The next sweep must send those decisions to it: the
// agents send it the traces' late spans, which would otherwise be decided
// afresh there, and a kept trace's late spans without an ERROR dropped.
// The decisions whose member did not change are not sent again, and a
// sweep with nothing to send lists nothing.
func TestDrainDecisionsAfterChange(t *testing.T) {
	a, g := startGate(t, false), startGate(t, false)
	buf := &decisionsOf{}
	for i := range 40 {
		buf.kept = append(buf.kept, Kept{ID: [16]byte{byte(i), 1, 2, 3}})
	}
	obs := &decisionObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr)
	n.BeginDrain()
	n.HandOver(context.Background())
	require.Len(t, a.decisions(), 40, "every decision at a")
	require.Equal(t, int64(40), obs.handed.Load())

	n.setMembers([]string{self, a.addr, g.addr})
	n.HandOver(context.Background()) // the next sweep
	r := ring.New([]string{a.addr, g.addr})
	atG, missing := 0, 0
	got := g.decisions()
	for _, k := range buf.kept {
		if r.Members()[r.Owner(ring.Hash(k.ID))] != g.addr {
			continue
		}
		atG++
		if got[k.ID] != 1 {
			missing++
		}
	}
	require.Positive(t, atG, "g owns some decisions")
	for id, c := range a.decisions() {
		assert.Equal(t, 1, c, "decision %x at a once", id[:4])
	}
	lists := buf.lists.Load()
	n.HandOver(context.Background()) // nothing changed
	t.Logf("decisions g owns after it joined: %d, of which it did not get %d; counted handed over %d; listed %d times, %d after a sweep with no change",
		atG, missing, obs.handed.Load(), lists, buf.lists.Load())
	assert.Zero(t, missing, "every decision g owns at g, once")
	assert.Equal(t, int64(40+atG), obs.handed.Load(), "each counted once per member that took it")
	assert.Equal(t, lists, buf.lists.Load(), "a sweep with nothing to send lists nothing")
}
