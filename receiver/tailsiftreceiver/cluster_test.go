package tailsiftreceiver

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/membership/membershiptest"
	"github.com/tailsift/tailsift/internal/ring"
)

// The in-process cluster tests run tailsift receivers with a cluster block
// on 127.0.0.11, .12 and .13, one port, their members from a DNS server in
// process, each on a fake clock: the member set changes, the settle time
// passes and traces are decided when the test moves the clocks.

var gatewayHosts = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}

// freePort returns a port free on the first gateway host.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(gatewayHosts[0], "0"))
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

type fleet struct {
	t     *testing.T
	dns   *membershiptest.DNSServer
	port  int
	addrs []string
	gw    map[string]*rig
}

// startFleet starts a gateway on every host; the DNS server lists inDNS.
// The last gateway drains for drain when it shuts down, the others not at
// all.
func startFleet(t *testing.T, handover bool, drain time.Duration, inDNS ...string) *fleet {
	t.Helper()
	return startFleetWith(t, fleetOptions{handover: handover, drain: drain}, inDNS...)
}

// fleetOptions are startFleet's: handover on, the last gateway's drain,
// and RED metrics on every gateway.
type fleetOptions struct {
	handover bool
	drain    time.Duration
	red      bool
	// configure, when set, changes every gateway's config.
	configure func(*Config)
}

func startFleetWith(t *testing.T, o fleetOptions, inDNS ...string) *fleet {
	t.Helper()
	handover, drain := o.handover, o.drain
	// The name lists nobody until every gateway listens: a gateway's
	// connection to one not yet listening would fail its first sends.
	f := &fleet{t: t, dns: membershiptest.StartDNS(t), port: freePort(t), gw: map[string]*rig{}}
	for i, h := range gatewayHosts {
		addr := net.JoinHostPort(h, strconv.Itoa(f.port))
		f.addrs = append(f.addrs, addr)
		cfg := f.config(addr, handover)
		if o.configure != nil {
			o.configure(cfg)
		}
		if i == len(gatewayHosts)-1 && drain > 0 {
			cfg.Cluster.Get().Drain = drain
			// The test moves its clock until the drain ends: nothing may
			// come due meanwhile.
			cfg.Completion.Quiet, cfg.Completion.MaxWait = 10*time.Hour, 20*time.Hour
		}
		var prepare func(*tailsiftReceiver)
		if o.red {
			prepare = func(r *tailsiftReceiver) { r.enableRED(new(consumertest.MetricsSink)) }
		}
		f.gw[addr] = newRigWith(t, cfg, nil, prepare)
	}
	f.dns.Set(inDNS...)
	f.waitMembers(int64(len(inDNS)), f.addrs...)
	// The first member set has settled: no handover is due when the test
	// begins (one due then would run on the ring of that moment). The
	// settle timers are set by the nodes' goroutines: the clocks move in
	// steps a few milliseconds apart, past settle, so that each timer is
	// set and has fired.
	steps := 0
	require.Eventually(t, func() bool {
		f.tick(time.Second)
		steps++
		return steps >= 6
	}, 10*time.Second, 5*time.Millisecond)
	return f
}

func (f *fleet) config(self string, handover bool) *Config {
	cfg := testConfig()
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = self
	cfg.Protocols.GRPC = configoptional.Some(g)
	cfg.Protocols.HTTP = configoptional.None[HTTPConfig]()
	// Nothing is decided before the test moves the clocks a minute.
	cfg.Completion.Quiet, cfg.Completion.MaxWait = time.Minute, 2*time.Minute
	c := cluster.NewDefaultConfig()
	c.Self = self
	c.Members.DNS = configoptional.Some(membership.DNSConfig{
		Hostname: "gateways.tailsift.test", Port: f.port, Interval: time.Second, Timeout: time.Second, Server: f.dns.Addr,
	})
	c.Drain = 0
	c.Handover.Enabled = handover
	c.Handover.Settle = 2 * time.Second
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	return cfg
}

// tick moves every running gateway's clock by d.
func (f *fleet) tick(d time.Duration) {
	for _, g := range f.gw {
		if g.r.buf != nil {
			g.clk.Advance(d)
		}
	}
}

// received sums the spans the gateways' buffers took in.
func (f *fleet) received() int64 {
	var n int64
	for _, g := range f.gw {
		n += g.metric("otelcol_receiver_tailsift_spans_received")
	}
	return n
}

func (f *fleet) waitReceived(want int64) {
	f.t.Helper()
	require.Eventually(f.t, func() bool { return f.received() == want }, 10*time.Second, 5*time.Millisecond,
		"spans buffered in the fleet: want %d", want)
}

// waitMembers moves the clocks until every gateway in gws sees n members.
func (f *fleet) waitMembers(n int64, gws ...string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		f.tick(time.Second)
		for _, a := range gws {
			if f.gw[a].metric("otelcol_receiver_tailsift_cluster_members") != n {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond)
}

// decideAll decides every buffered trace and returns, per trace number,
// the gateways whose sink got its spans, and how many spans were kept.
func (f *fleet) decideAll(addrs []string) (where map[uint64]map[string]int) {
	f.t.Helper()
	for _, a := range addrs {
		f.gw[a].advance(3 * time.Minute)
		f.gw[a].advance(time.Second) // the output batch
	}
	where = map[uint64]map[string]int{}
	for _, a := range addrs {
		for _, td := range f.gw[a].sink.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, sp := range ss.Spans().All() {
						n := traceNumber(sp.TraceID())
						if where[n] == nil {
							where[n] = map[string]int{}
						}
						where[n][a]++
					}
				}
			}
		}
	}
	return where
}

var numbers = map[[16]byte]uint64{}

func traceNumber(id [16]byte) uint64 { return numbers[id] }

// parts are a trace's first spans (root and an OK child) and its last (an
// ERROR grandchild), sent apart so that a ring change falls between them.
func parts(from, to uint64) (first, last ptrace.Traces) {
	var a, b []spanSpec
	for n := from; n < to; n++ {
		numbers[traceID(n)] = n
		a = append(a, spanSpec{Trace: n, Span: 1}, spanSpec{Trace: n, Span: 2, Parent: 1})
		b = append(b, spanSpec{Trace: n, Span: 3, Parent: 2, Status: ptrace.StatusCodeError})
	}
	return batch(a...), batch(b...)
}

// owners counts, per member, the traces [from, to) it owns in a ring.
func owners(members []string, from, to uint64) map[string]int {
	r := ring.New(members)
	out := map[string]int{}
	for n := from; n < to; n++ {
		out[r.Members()[r.Owner(ring.Hash(traceID(n)))]]++
	}
	return out
}

// split counts the traces of [from, to) not kept whole at one gateway.
func split(where map[uint64]map[string]int, from, to uint64) int {
	n := 0
	for tr := from; tr < to; tr++ {
		if len(where[tr]) != 1 {
			n++
			continue
		}
		for _, spans := range where[tr] {
			if spans != 3 {
				n++
			}
		}
	}
	return n
}

func TestClusterForwardsMisroutedSpans(t *testing.T) {
	f := startFleet(t, false, 0, gatewayHosts...)
	a := f.addrs[0]
	const traces = 60
	first, last := parts(1, traces+1)
	// Every span goes to the first gateway, as an agent with a stale ring
	// would send them: it keeps its own traces and forwards the others.
	f.gw[a].sendGRPC(first)
	f.gw[a].sendGRPC(last)
	f.waitReceived(3 * traces)

	own := owners(f.addrs, 1, traces+1)
	require.Positive(t, own[f.addrs[1]])
	require.Positive(t, own[f.addrs[2]])
	assert.Equal(t, int64(3*(traces-own[a])), f.gw[a].metric("otelcol_receiver_tailsift_cluster_spans_forwarded"))
	for _, addr := range f.addrs {
		assert.Equal(t, int64(3*own[addr]), f.gw[addr].metric("otelcol_receiver_tailsift_spans_received"), addr)
	}
	where := f.decideAll(f.addrs)
	assert.Zero(t, split(where, 1, traces+1), "every trace kept whole, once")
	r := ring.New(f.addrs)
	for n := uint64(1); n <= traces; n++ {
		assert.Contains(t, where[n], r.Members()[r.Owner(ring.Hash(traceID(n)))], "trace %d kept by its owner", n)
	}
}

func TestClusterForwardedSpansAreKept(t *testing.T) {
	// Without handover: one would move the foreign traces kept here.
	f := startFleet(t, false, 0, gatewayHosts...)
	a := f.addrs[0]
	first, _ := parts(100, 140)
	body := cluster.AppendControl(nil, &cluster.Control{Forwarded: true})
	body = append(body, marshal(t, first)...)
	resp, err := f.gw[a].grpcExport(context.Background(), body)
	require.NoError(t, err)
	assert.Empty(t, resp)
	f.waitReceived(80)
	assert.Equal(t, int64(80), f.gw[a].metric("otelcol_receiver_tailsift_spans_received"), "marked spans are never forwarded again")
	assert.Zero(t, f.gw[a].metric("otelcol_receiver_tailsift_cluster_spans_forwarded"))

	// A malformed control is refused whole, and the gateway keeps serving.
	bad := cluster.AppendControl(nil, &cluster.Control{Forwarded: true})
	bad[len(bad)-3] = 0x7f // the version byte
	_, err = f.gw[a].grpcExport(context.Background(), append(bad, marshal(t, first)...))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "InvalidArgument")
	assert.Equal(t, int64(80), f.received())
}

// TestClusterHandover adds the third gateway to the DNS name between the
// first and the last spans of every trace. With handover, the traces the
// new gateway now owns move to it and are kept whole; without, they split.
func TestClusterHandover(t *testing.T) {
	for _, handover := range []bool{true, false} {
		t.Run("handover="+strconv.FormatBool(handover), func(t *testing.T) {
			f := startFleet(t, handover, 0, gatewayHosts[:2]...)
			a, c := f.addrs[0], f.addrs[2]
			const traces = 90
			first, last := parts(1000, 1000+traces)
			f.gw[a].sendGRPC(first)
			f.waitReceived(2 * traces)

			f.dns.Set(gatewayHosts...)
			f.waitMembers(3, f.addrs...)
			moved := owners(f.addrs, 1000, 1000+traces)[c]
			require.Positive(t, moved)
			want := int64(2 * traces)
			if handover {
				want += int64(2 * moved) // taken in again at the new owner
				require.Eventually(t, func() bool {
					f.tick(time.Second) // the settle time passes
					return f.received() == want
				}, 10*time.Second, 5*time.Millisecond, "want %d, got %d", want, f.received())
				// The sender counts a chunk handed over when the new owner's
				// answer is back, which can be after that owner counted
				// the spans received.
				handed := func() int64 {
					var n int64
					for _, g := range f.gw {
						n += g.metric("otelcol_receiver_tailsift_cluster_traces_handed_over")
					}
					return n
				}
				assert.Eventually(t, func() bool { return handed() == int64(moved) }, 10*time.Second, 5*time.Millisecond)
				assert.Equal(t, int64(moved), handed(), "traces handed over")
			}
			f.gw[a].sendGRPC(last)
			f.waitReceived(want + traces)

			where := f.decideAll(f.addrs)
			if handover {
				assert.Zero(t, split(where, 1000, 1000+traces), "no trace split")
			} else {
				assert.Equal(t, moved, split(where, 1000, 1000+traces), "the moved traces split")
			}
		})
	}
}

// TestClusterDrain shuts the third gateway down as Kubernetes does: it
// leaves DNS as it gets SIGTERM. It hands its buffer over as the drain
// begins, forwards what arrives while it drains, and exits, deciding
// nothing itself; no trace is split.
func TestClusterDrain(t *testing.T) {
	const drain = 5 * time.Second
	f := startFleet(t, true, drain, gatewayHosts...)
	a, c := f.addrs[0], f.addrs[2]
	const traces = 90
	first, last := parts(2000, 2000+traces)
	f.gw[a].sendGRPC(first)
	f.waitReceived(2 * traces)
	held := owners(f.addrs, 2000, 2000+traces)[c]
	require.Positive(t, held)

	f.dns.Set(gatewayHosts[:2]...)
	gc := f.gw[c]
	stopped := make(chan error, 1)
	go func() { stopped <- gc.r.Shutdown(context.Background()) }()

	// While it drains, the spans it gets of traces it owned are forwarded.
	r3 := ring.New(f.addrs)
	var sent []uint64
	next := uint64(3000)
	require.Eventually(t, func() bool {
		for ; r3.Members()[r3.Owner(ring.Hash(traceID(next)))] != c; next++ {
		}
		one, two := parts(next, next+1)
		sent = append(sent, next)
		next++
		before := gc.metric("otelcol_receiver_tailsift_cluster_spans_forwarded")
		_, err := gc.grpcExport(context.Background(), marshal(t, one))
		require.NoError(t, err)
		_, err = gc.grpcExport(context.Background(), marshal(t, two))
		require.NoError(t, err)
		return gc.metric("otelcol_receiver_tailsift_cluster_spans_forwarded")-before == 3
	}, 10*time.Second, 5*time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("shut down before the drain ended: %v", err)
	default:
	}
	require.Eventually(t, func() bool { // the drain ends
		gc.clk.Advance(time.Second)
		select {
		case err := <-stopped:
			require.NoError(t, err)
			return true
		default:
			return false
		}
	}, 10*time.Second, 5*time.Millisecond)
	delete(f.gw, c)

	// Its whole buffer: its traces, and the first one sent above when that
	// came before the drain began.
	assert.GreaterOrEqual(t, gc.metric("otelcol_receiver_tailsift_cluster_traces_handed_over"), int64(held),
		"the draining gateway hands its whole buffer over")
	assert.Zero(t, gc.metric("otelcol_receiver_tailsift_cluster_handover_decided_locally"))
	assert.Empty(t, gc.sink.AllTraces(), "it decides nothing itself")

	f.waitMembers(2, f.addrs[:2]...)
	// The others hold every trace's first spans now (their own, and the
	// draining gateway's), and the traces sent during the drain.
	want := int64(2*traces + 3*len(sent))
	f.waitReceived(want)
	f.gw[a].sendGRPC(last)
	f.waitReceived(want + traces)
	where := f.decideAll(f.addrs[:2])
	assert.Zero(t, split(where, 2000, 2000+traces), "no trace split")
	for _, n := range sent {
		assert.Len(t, where[n], 1, "trace %d sent during the drain is kept at one gateway", n)
		for _, spans := range where[n] {
			assert.Equal(t, 3, spans, "trace %d sent during the drain is kept whole", n)
		}
	}
}
