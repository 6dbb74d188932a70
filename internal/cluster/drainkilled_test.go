package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestDrainDecisionsAfterMemberKilled: a draining gateway handed every
// decision over to a and b; then b is killed (still in the set) and the
// router finds it down. b's decisions died with it, and its traces' late
// spans go to a now: the next sweep must send b's decisions to a, though
// the member set did not change, and not a's own again.
func TestDrainDecisionsAfterMemberKilled(t *testing.T) {
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

	b.srv.Stop()
	// A relayed span finds it down.
	require.Error(t, n.router.SendNow(context.Background(), b.addr, n.relay))
	require.True(t, n.router.Down(b.addr))
	n.HandOver(context.Background()) // the next sweep

	r := ring.New([]string{a.addr, b.addr})
	got := a.decisions()
	ofB, missing, twice := 0, 0, 0
	for _, k := range buf.kept {
		if r.Members()[r.Owner(ring.Hash(k.ID))] == b.addr {
			ofB++
		}
		switch got[k.ID] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	t.Logf("b's decisions %d of 40; at a after b was killed: %d, missing %d, twice %d; counted handed over %d",
		ofB, len(got), missing, twice, obs.handed.Load())
	assert.Zero(t, missing, "every decision at a, b's included")
	assert.Zero(t, twice, "a's own not again")
	assert.Equal(t, int64(40+ofB), obs.handed.Load())
}
