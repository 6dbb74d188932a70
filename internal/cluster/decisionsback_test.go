package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestDrainResendsOnlyDecisionsThatCameBack: a draining gateway handed
// every decision over to a and b, then a few decisions come back to be
// remembered here (the router's fallback: a queued relay of them found
// its member down with no other member up). The next sweep sends those
// again, not the decisions a and b took already: each decision counts
// once per member that takes it (cluster_decisions_handed_over).
func TestDrainResendsOnlyDecisionsThatCameBack(t *testing.T) {
	a, b := startGate(t, false), startGate(t, false)
	buf := &decisionsOf{}
	for i := range 40 {
		buf.kept = append(buf.kept, Kept{ID: [16]byte{byte(i), 1, 2, 3}})
	}
	obs := &decisionObserver{}
	n, _ := moveNode(t, buf, obs, nil, a.addr, b.addr)
	n.BeginDrain()
	n.HandOver(context.Background())
	require.Equal(t, int64(40), obs.handed.Load(), "every decision at a or b")

	// Three decisions come back (they are among those the buffer lists).
	back := Control{Forwarded: true, Decisions: Decisions{Kept: buf.kept[:3]}}
	require.NoError(t, n.takeBack(context.Background(), AppendControl(nil, &back)))
	n.HandOver(context.Background()) // the next sweep

	r := ring.New([]string{a.addr, b.addr})
	twice, missing := 0, 0
	for i, k := range buf.kept {
		at := a.decisions()
		if r.Members()[r.Owner(ring.Hash(k.ID))] == b.addr {
			at = b.decisions()
		}
		want := 1
		if i < 3 {
			want = 2 // they came back: sent again
		}
		switch {
		case at[k.ID] > want:
			twice++
		case at[k.ID] < want:
			missing++
		}
	}
	t.Logf("decisions 40, 3 of them came back; taken again without coming back %d, missing %d; counted handed over %d (want 43)",
		twice, missing, obs.handed.Load())
	assert.Zero(t, missing)
	assert.Zero(t, twice, "the decisions that did not come back are not sent again")
	assert.Equal(t, int64(43), obs.handed.Load(), "counted once per member that took them, the 3 that came back again")
}
