package tailsiftexporter

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestFailedOverSpansCountOnce: a gateway killed before a load, its death
// not yet noticed: the spans its queue takes fail over to the next member
// up. Each span sent must count once in exporterhelper's sent_spans summed
// over the members' queues, and once in spans_routed, whichever member
// took it; spans_rerouted counts those that went to another member than
// their owner.
func TestFailedOverSpansCountOnce(t *testing.T) {
	h := newHarness(t, "127.0.0.41", "127.0.0.42", "127.0.0.43")
	victim := h.ring.Members()[1]
	h.gw.Stop(victim)
	h.send(20)
	h.check()
	own := 0
	for _, rs := range h.gw.Snapshot() {
		if h.owner(rs[0].TraceID) == victim {
			own++
		}
	}
	require.Positive(t, own, "the victim owned no span: the test proves nothing")
	total := int64(len(h.sent))
	// sent_spans is recorded as each send's push returns, a moment after
	// the gateway took the spans.
	require.Eventually(t, func() bool { return h.membersSent(nil) >= total }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // nothing more is sent: a count that still moves shows here
	sent := h.membersSent(nil)
	victimSent := h.membersSent(func(m string) bool { return m == victim })
	routed := h.metric("otelcol_exporter_tailsift_spans_routed")
	rerouted := h.metric("otelcol_exporter_tailsift_spans_rerouted")
	t.Logf("spans sent %d, the victim's %d; sent_spans over the members %d (the victim's queue %d); spans_routed %d; spans_rerouted %d",
		total, own, sent, victimSent, routed, rerouted)
	assert.Equal(t, total, sent, "sent_spans over the members counts each span once")
	assert.Equal(t, total, routed, "spans_routed counts each span once")
	assert.Equal(t, int64(own), rerouted, "every span of the victim re-routed")
}

// membersSent sums exporterhelper's sent_spans of the members' queues
// (the exporter IDs tailsift/<name>/<member>) that member accepts, all
// of them when it is nil; not the exporter's own.
func (h *harness) membersSent(member func(string) bool) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric("otelcol_exporter_sent_spans")
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(h.t, ok)
	var total int64
	for _, dp := range sum.DataPoints {
		id, _ := dp.Attributes.Value("exporter")
		for _, addr := range h.ring.Members() {
			if strings.HasSuffix(id.AsString(), "/"+addr) && (member == nil || member(addr)) {
				total += dp.Value
			}
		}
	}
	return total
}
