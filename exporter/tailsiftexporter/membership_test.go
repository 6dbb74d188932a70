package tailsiftexporter

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"

	"github.com/tailsift/tailsift/internal/membership/membershiptest"
	"github.com/tailsift/tailsift/internal/ring"
)

// TestDNSMembershipChanges drives the member set through an in-process DNS
// server: a gateway added takes its share of the traces, one removed hands
// its share to the others, and traces of members that stay never move.
func TestDNSMembershipChanges(t *testing.T) {
	gw, addrs := startGateways(t, "127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44")
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
		before := h.gw.snapshot()
		h.send(10)
		perMember := map[string]int{}
		for id, rs := range h.gw.snapshot() {
			if _, old := before[id]; old {
				continue
			}
			require.Equal(t, r.Members()[r.Owner(ring.Hash(rs[0].traceID))], rs[0].gateway)
			perMember[rs[0].gateway]++
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

// TestMembersChangeWhileRouting changes the member set while batches are
// routed: a part routed to a member that left in the meantime is routed
// again on the new set, and nothing is lost or refused.
func TestMembersChangeWhileRouting(t *testing.T) {
	gw, addrs := startGateways(t, "127.0.0.51", "127.0.0.52", "127.0.0.53")
	cfg := createDefaultConfig().(*Config)
	cfg.Members.Static = addrs
	cfg.GRPC.TLS.Insecure = true
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	e, err := newTailsiftExporter(set, cfg)
	require.NoError(t, err)
	require.NoError(t, e.start(t.Context(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.shutdown(context.Background())) }()

	sets := [][]string{addrs[:2], addrs, addrs[1:], addrs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			e.setMembers(sets[i%len(sets)])
		}
	}()
	var w workload
	sent := map[[8]byte]string{}
	for range 300 {
		td := w.batch(4, 3)
		for id, svc := range serviceOf(td) {
			sent[id] = svc
		}
		require.NoError(t, e.consumeTraces(t.Context(), td))
	}
	<-done
	require.Eventually(t, func() bool { return gw.count() >= len(sent) }, 10*time.Second, 5*time.Millisecond)
	for id, rs := range gw.snapshot() {
		_, ok := sent[id]
		require.True(t, ok)
		require.Len(t, rs, 1, "span %x duplicated", id)
	}
}

// TestRouteOnStaleSet routes a batch on a member set that has just been
// replaced, as a batch does when the set changes while it is being routed:
// the parts of members that left go to the new set instead of failing.
func TestRouteOnStaleSet(t *testing.T) {
	gw, addrs := startGateways(t, "127.0.0.61", "127.0.0.62")
	cfg := createDefaultConfig().(*Config)
	cfg.Members.Static = addrs
	cfg.GRPC.TLS.Insecure = true
	e, err := newTailsiftExporter(exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, e.start(t.Context(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.shutdown(context.Background())) }()

	stale := e.state.Load()
	e.setMembers(addrs[:1])
	e.retiring.Wait() // the member that left has shut its queue

	var w workload
	td := w.batch(20, 3)
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	require.NoError(t, e.route(t.Context(), stale, buf, &targets{ring: stale.ring, down: stale.down}))
	require.Eventually(t, func() bool { return gw.count() == td.SpanCount() }, 10*time.Second, 5*time.Millisecond)
	for _, rs := range gw.snapshot() {
		assert.Equal(t, addrs[0], rs[0].gateway)
	}
}
