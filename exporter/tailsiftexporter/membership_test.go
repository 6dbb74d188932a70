package tailsiftexporter

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/membership/membershiptest"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestDNSMembershipChanges drives the member set through an in-process DNS
// server: a gateway added takes its share of the traces, one removed hands
// its share to the others, and traces of members that stay never move.
func TestDNSMembershipChanges(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44")
	_, port, err := net.SplitHostPort(addrs[0])
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	srv := membershiptest.StartDNS(t, "127.0.0.41", "127.0.0.42", "127.0.0.43")
	h := newHarnessOn(t, gw, addrs, func(cfg *Config) {
		d := cfg.Members.DNS.GetOrInsertDefault()
		d.Hostname, d.Port, d.Server, d.Interval = "gateways.tailsift.test", p, srv.Addr, 20*time.Millisecond
	})
	membersGauge := func(n int64) func() bool {
		return func() bool { return h.metric("otelcol_exporter_tailsift_members") == n }
	}
	// expect sends batches and checks that each new trace went to its owner
	// on the ring of members.
	expect := func(members ...string) map[string]int {
		t.Helper()
		r := ring.New(members)
		before := h.gw.Snapshot()
		h.send(10)
		perMember := map[string]int{}
		for id, rs := range h.gw.Snapshot() {
			if _, old := before[id]; old {
				continue
			}
			require.Equal(t, r.Members()[r.Owner(ring.Hash(rs[0].TraceID))], rs[0].Gateway)
			perMember[rs[0].Gateway]++
		}
		return perMember
	}

	require.Eventually(t, membersGauge(3), 10*time.Second, 5*time.Millisecond)
	got := expect(addrs[:3]...)
	assert.Len(t, got, 3)

	srv.Set("127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44")
	require.Eventually(t, membersGauge(4), 10*time.Second, 5*time.Millisecond)
	got = expect(addrs...)
	assert.Positive(t, got[addrs[3]], "the added member got no trace")

	srv.Set("127.0.0.41", "127.0.0.43", "127.0.0.44")
	require.Eventually(t, membersGauge(3), 10*time.Second, 5*time.Millisecond)
	got = expect(addrs[0], addrs[2], addrs[3])
	assert.Zero(t, got[addrs[1]], "the removed member still gets traces")

	srv.Set() // an empty answer keeps the last good set
	h.send(5)
	assert.Equal(t, int64(3), h.metric("otelcol_exporter_tailsift_members"))
	h.check()
}
