package tailsiftexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestHungGatewayFailsOver: an agent routes to two gateways, one of which
// accepts connections and answers nothing. With a 100 ms send timeout and
// the retry budget cut to 1 s, its spans were retried and dropped while
// the other gateway was up. After failover.timeouts (2, the default) sends
// in a row unanswered it is down, and its spans, queued ones included, go
// to the other gateway: every span arrives, once, each trace whole.
func TestHungGatewayFailsOver(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.35")
	hung, hungAddr := routertest.StartHung(t, "127.0.0.1")
	members := []string{addrs[0], hungAddr}
	h := newHarnessOn(t, gw, members, func(cfg *Config) {
		cfg.Members.Static = members
		cfg.Timeout.Timeout = 100 * time.Millisecond
		cfg.Retry.MaxElapsedTime = time.Second
	})
	start := time.Now()
	for range 10 {
		td := h.w.Batch(8, 5)
		for id, svc := range routertest.ServiceOf(td) {
			h.sent[id] = svc
		}
		require.NoError(t, h.exp.ConsumeTraces(t.Context(), td))
	}
	ok := assert.Eventually(t, func() bool { return gw.Count() >= len(h.sent) }, 4*time.Second, 5*time.Millisecond,
		"every span reaches the gateway up")
	t.Logf("the gateway up got %d of %d spans in %v; the hung one took %d calls; members up: %d",
		gw.Count(), len(h.sent), time.Since(start).Round(10*time.Millisecond), hung.Calls(), h.metric("otelcol_exporter_tailsift_members_up"))
	require.True(t, ok)
	h.check()
	assert.Positive(t, hung.Calls(), "the hung gateway owned no trace: the test proves nothing")
	assert.Equal(t, int64(1), h.metric("otelcol_exporter_tailsift_members_up"), "the hung gateway is down")
	assert.Positive(t, h.metric("otelcol_exporter_tailsift_spans_rerouted"))
}
