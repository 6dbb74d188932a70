package tailsiftexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestFailedOverTwiceCountsOnce: two gateways killed before a load, their
// deaths not yet noticed. A span of the first whose next member up is the
// second is found refused twice on its way to the third: it must still
// count once in sent_spans summed over the members' queues and once in
// spans_routed (the exporter's README, "Telemetry").
func TestFailedOverTwiceCountsOnce(t *testing.T) {
	h := newHarness(t, "127.0.0.44", "127.0.0.45", "127.0.0.46", "127.0.0.47")
	b, c := h.ring.Members()[1], h.ring.Members()[2]
	h.gw.Stop(b)
	h.gw.Stop(c)
	h.send(40)
	h.check()
	bi, ci := h.ring.Index(b), h.ring.Index(c)
	viaC, downs := 0, 0 // spans of b's traces whose next member after b is c; of b's and c's
	for _, rs := range h.gw.Snapshot() {
		hash := ring.Hash(rs[0].TraceID)
		if o := h.ring.Owner(hash); o == bi || o == ci {
			downs++
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
	t.Logf("spans sent %d, of b's by way of c %d; sent_spans over the members %d; spans_routed %d; spans_rerouted %d of %d",
		total, viaC, sent, routed, rerouted, downs)
	assert.Equal(t, total, sent, "sent_spans over the members counts each span once")
	assert.Equal(t, total, routed, "spans_routed counts each span once")
	assert.Equal(t, int64(downs), rerouted, "every span of b and c re-routed, once")
}
