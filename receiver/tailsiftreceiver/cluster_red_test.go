package tailsiftreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/tailsift/tailsift/internal/red"
)

// redCalls sums the RED request counts (traces.span.metrics.calls) of every
// gateway of the fleet, the stopped ones included.
func (f *fleet) redCalls() int64 {
	var n int64
	for _, g := range f.gw {
		n += callsOf(g.r.red.Flush(uint64(g.clk.Now().UnixNano())))
	}
	return n
}

func callsOf(md pmetric.Metrics) int64 {
	var n int64
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() != red.MetricCalls {
					continue
				}
				for _, dp := range m.Sum().DataPoints().All() {
					n += dp.IntValue()
				}
			}
		}
	}
	return n
}

// TestClusterREDCountsEachSpanOnce: RED metrics count every span once
// across the tier. A handed-over trace was counted at its new owner again,
// and so was a trace given back after its handover failed, at the gateway
// that had counted it already: a ring change made request and error rates
// jump. Spans fed to the fleet, and RED's request count summed over the
// gateways, must be equal, however the spans moved between gateways.
func TestClusterREDCountsEachSpanOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before and after are the hosts in DNS before and after the
		// ring change; down is a gateway stopped before it.
		before, after []string
		down          string
	}{
		// The first spans go to the first gateway: the second's are
		// forwarded there. Then the third joins: both hand it the
		// traces it owns now.
		{name: "handed over", before: gatewayHosts[:2], after: gatewayHosts},
		// The third, dead, joins the first: the first's handover to it
		// fails and its router gives the traces back.
		{name: "given back", before: gatewayHosts[:1], after: []string{gatewayHosts[0], gatewayHosts[2]}, down: gatewayHosts[2]},
		// The third, dead, joins the first two: the handovers to it fail
		// over to the other gateway.
		{name: "failed over", before: gatewayHosts[:2], after: gatewayHosts, down: gatewayHosts[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFleetWith(t, fleetOptions{handover: true, red: true}, tc.before...)
			a := f.addrs[0]
			addrOf := map[string]string{}
			for i, h := range gatewayHosts {
				addrOf[h] = f.addrs[i]
			}
			var afterAddrs []string
			for _, h := range tc.after {
				afterAddrs = append(afterAddrs, addrOf[h])
			}
			if tc.down != "" {
				require.NoError(t, f.gw[addrOf[tc.down]].r.Shutdown(context.Background()))
			}
			const traces = 90
			first, _ := parts(5000, 5000+traces)
			f.gw[a].sendGRPC(first)
			f.waitReceived(2 * traces)
			require.Equal(t, int64(2*traces), f.redCalls(), "before the ring change")

			f.dns.Set(tc.after...)
			var up []string
			for _, addr := range afterAddrs {
				if tc.down == "" || addr != addrOf[tc.down] {
					up = append(up, addr)
				}
			}
			f.waitMembers(int64(len(tc.after)), up...)
			moved := owners(afterAddrs, 5000, 5000+traces)[f.addrs[2]]
			require.Positive(t, moved)
			// A moved trace handed over is taken in again at its new
			// owner. One whose new owner is dead (refused at once, or
			// known down) fails over to the next member up, the other
			// gateway, and is taken in again there; with no other member
			// up it is given back and taken in again where it was.
			var handed, local int64
			require.Eventually(t, func() bool {
				f.tick(time.Second) // the settle time passes
				handed, local = 0, 0
				for _, g := range f.gw {
					handed += g.metric("otelcol_receiver_tailsift_cluster_traces_handed_over")
					local += g.metric("otelcol_receiver_tailsift_cluster_handover_decided_locally")
				}
				if tc.down == "" && handed < int64(moved) {
					// The handover sends its chunks one after another,
					// each once the one before it was taken.
					return false
				}
				return handed+local > 0 && f.received() == 2*traces+2*(handed+local)
			}, 10*time.Second, 5*time.Millisecond, "spans taken in: want %d, then %d handed over and %d given back",
				2*traces+2*(handed+local), handed, local)
			switch tc.name {
			case "handed over":
				require.Equal(t, int64(moved), handed, "every moved trace handed over")
			case "given back":
				require.Positive(t, local, "given back: no other member up")
			case "failed over":
				// The dead member's part goes to the next member up.
				require.Positive(t, handed, "failed over to the other gateway")
			}

			assert.Equal(t, int64(2*traces), f.redCalls(), "RED counted the moved spans again")
		})
	}
}
