package tailsiftexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestReroutedFromQueueCountsOnce: gateway b is killed and found down (a
// first load goes past it); then c, the next member after b for some of
// b's traces, is killed too, before a second load. b's spans of that load
// are routed to c's queue, counted re-routed there; c's queue finds c
// down and fails them over to the next member up. spans_rerouted is the
// share of the spans sent to another member than their owner: each span
// of b and c once, not once more as c's queue fails it over.
func TestReroutedFromQueueCountsOnce(t *testing.T) {
	h := newHarness(t, "127.0.0.64", "127.0.0.65", "127.0.0.66", "127.0.0.67")
	b, c := h.ring.Members()[1], h.ring.Members()[2]
	h.gw.Stop(b)
	h.send(40) // every span at a gateway: b was found down
	first := map[[8]byte]bool{}
	for id := range h.sent {
		first[id] = true
	}
	h.gw.Stop(c)
	h.send(40)
	h.check()
	bi, ci := h.ring.Index(b), h.ring.Index(c)
	viaC, downs := 0, 0
	for id, rs := range h.gw.Snapshot() {
		hash := ring.Hash(rs[0].TraceID)
		if o := h.ring.Owner(hash); o == bi || o == ci && !first[id] {
			downs++ // b's, and c's of the second load
		}
		if h.ring.Owner(hash) == bi && h.ring.Next(hash, func(i int) bool { return i == bi }) == ci {
			viaC++
		}
	}
	require.Positive(t, viaC, "no span of b went by way of c: the test proves nothing")
	total := int64(len(h.sent))
	require.Eventually(t, func() bool { return h.membersSent(nil) >= total }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // nothing more is sent: a count that still moves shows here
	sent := h.membersSent(nil)
	routed := h.metric("otelcol_exporter_tailsift_spans_routed")
	rerouted := h.metric("otelcol_exporter_tailsift_spans_rerouted")
	t.Logf("spans sent %d, of b's traces whose next member is c %d (both loads); sent_spans over the members %d; spans_routed %d; spans_rerouted %d, want %d",
		total, viaC, sent, routed, rerouted, downs)
	assert.Equal(t, total, sent, "sent_spans over the members counts each span once")
	assert.Equal(t, total, routed, "spans_routed counts each span once")
	assert.Equal(t, int64(downs), rerouted, "every span of b and c re-routed, once")
}
