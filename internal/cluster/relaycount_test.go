package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestRelayedDecisionsThatComeBackCountOnce: a draining gateway passes on
// the decisions another gateway hands it (relayed, queued). The part for
// a, killed and still in the set, comes back to be remembered here (a
// decisions request has no spans to fail over: the router's fallback),
// and the next sweep sends it to b, where a's traces' late spans end.
// b took every decision once: cluster_decisions_handed_over must count
// each once, not once more for the queued relay no member took.
func TestRelayedDecisionsThatComeBackCountOnce(t *testing.T) {
	a, b := startGate(t, false), startGate(t, false)
	buf := &decisionsOf{}
	obs := &decisionObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr, b.addr)
	a.srv.Stop() // killed; the member set still lists it
	n.BeginDrain()
	n.HandOver(context.Background()) // nothing of its own to hand over
	require.Zero(t, obs.handed.Load())

	all := ring.New([]string{self, a.addr, b.addr})
	var d Decisions
	ofA := 0
	for i := range 60 {
		id := [16]byte{byte(i), 7, 7, 7}
		switch all.Members()[all.Owner(ring.Hash(id))] {
		case a.addr:
			ofA++
		case self:
			continue // passed on to a or b: left out to keep ofA exact
		}
		d.Kept = append(d.Kept, Kept{ID: id})
	}
	require.NotZero(t, ofA)
	_, err := n.Ingest(context.Background(), AppendControl(nil, &Control{Forwarded: true, Decisions: d}), nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		buf.mu.Lock()
		defer buf.mu.Unlock()
		back := 0
		for _, got := range buf.decisions {
			back += got.Len()
		}
		return back == ofA
	}, 10*time.Second, 5*time.Millisecond, "a's part comes back to be remembered here")

	// The buffer remembers them now; the next sweep sends them to b.
	buf.mu.Lock()
	for _, got := range buf.decisions {
		buf.kept = append(buf.kept, got.Kept...)
	}
	buf.mu.Unlock()
	n.HandOver(context.Background())

	taken := 0
	for _, c := range b.decisions() {
		taken += c
	}
	for _, c := range a.decisions() {
		taken += c
	}
	t.Logf("decisions relayed %d, of a %d (came back, sent to b by the next sweep); taken by the members %d; counted handed over %d",
		d.Len(), ofA, taken, obs.handed.Load())
	assert.Equal(t, d.Len(), taken, "b took each once")
	assert.Equal(t, int64(taken), obs.handed.Load(), "counted once per member that took them")
}
