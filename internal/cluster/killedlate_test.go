package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
)

// listenNode is a gateway's gRPC server that hands what it receives to
// the node stored in it.
func listenNode(t *testing.T) (*nodeServer, string, *grpc.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &nodeServer{}
	g := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(g, s)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return s, l.Addr().String(), g
}

// spansByTrace counts the spans of the requests a fakeBuffer took in.
func spansByTrace(b *fakeBuffer) map[[16]byte]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[[16]byte]int{}
	for _, buf := range b.ingested {
		var batch wire.Batch
		if wire.Scan(buf, &batch) != nil {
			continue
		}
		for _, sp := range batch.Spans {
			out[sp.TraceID]++
		}
	}
	return out
}

// lateSpan is one more span of trace id, encoded.
func lateSpan(t *testing.T, id [16]byte) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(id))
	sp.SetSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, 9})
	sp.SetName("late")
	return encode(t, td)
}

// TestHandOverToKilledMemberLateSpans: gateways g (this one), b and
// others; b is killed, still in the set, and g hands its buffer over (a
// ring change, or its drain). The agents send each of b's traces' late
// spans to the next member up after b in hash order, which forwards them
// as it forwards any span of a trace it does not own. Every trace of b
// must end whole at one gateway: the part g handed over and the late
// spans together, wherever the late spans' forwarding takes them.
func TestHandOverToKilledMemberLateSpans(t *testing.T) {
	for _, tc := range []struct {
		name   string
		drain  bool
		others int // gateways up besides g
		killed int // b, and more
	}{
		{"ring change", false, 1, 1},
		{"ring change, 4 gateways", false, 2, 1},
		{"drain", true, 1, 1},
		{"drain, 4 gateways", true, 2, 1},
		{"ring change, 5 gateways, 2 killed", false, 2, 2},
		{"drain, 5 gateways, 2 killed", true, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, gAddr, _ := listenNode(t)
			members := []string{gAddr}
			var dead []*grpc.Server
			killed := map[string]bool{}
			for range tc.killed {
				_, addr, srv := listenNode(t)
				dead = append(dead, srv)
				killed[addr] = true
				members = append(members, addr)
			}
			srvs := []*nodeServer{}
			var up []string
			for range tc.others {
				s, addr, _ := listenNode(t)
				srvs = append(srvs, s)
				up = append(up, addr)
			}
			members = append(members, up...)
			var w routertest.Workload
			td := w.Batch(80, 2)
			gBuf := newTraceBuffer(t, td)
			cfg := NewDefaultConfig()
			cfg.Self, cfg.Members.Static, cfg.Drain = gAddr, members, 0
			cfg.Handover.BytesPerSecond, cfg.Handover.Timeout = 1<<40, 20*time.Second
			g, _ := runNode(t, cfg, gBuf, nil)
			gs.node.Store(g)
			nodes := map[string]*Node{gAddr: g}
			bufs := map[string]*fakeBuffer{gAddr: &gBuf.fakeBuffer}
			for i, s := range srvs {
				addr := up[i]
				bufs[addr] = &fakeBuffer{}
				cfg.Self = addr
				nodes[addr], _ = runNode(t, cfg, bufs[addr], nil)
				s.node.Store(nodes[addr])
			}
			for _, srv := range dead {
				srv.Stop() // killed; DNS still lists it
			}
			if tc.drain {
				g.BeginDrain()
			}

			all := ring.New(members)
			isDead := func(i int) bool { return killed[all.Members()[i]] }
			var ofB [][16]byte // of the killed members
			for id := range gBuf.held() {
				if isDead(all.Owner(ring.Hash(id))) {
					ofB = append(ofB, id)
				}
			}
			require.NotEmpty(t, ofB, "the killed members own some traces")
			g.HandOver(context.Background())

			// The agents' failover: each late span to the next member up.
			notViaG := 0
			for _, id := range ofB {
				next := all.Members()[all.Next(ring.Hash(id), isDead)]
				if next != gAddr {
					notViaG++
				}
				_, err := nodes[next].Ingest(context.Background(), lateSpan(t, id), nil)
				require.NoError(t, err)
			}
			where := func() map[[16]byte]map[string]int {
				out := map[[16]byte]map[string]int{}
				add := func(place string, m map[[16]byte]int) {
					for id, n := range m {
						if out[id] == nil {
							out[id] = map[string]int{}
						}
						out[id][place] += n
					}
				}
				add(gAddr, gBuf.held())
				for addr, b := range bufs {
					add(addr, spansByTrace(b))
				}
				return out
			}
			// Each of b's traces has 2 spans handed over and 1 late span.
			require.Eventually(t, func() bool {
				at := where()
				for _, id := range ofB {
					n := 0
					for _, c := range at[id] {
						n += c
					}
					if n < 3 {
						return false
					}
				}
				return true
			}, 15*time.Second, 5*time.Millisecond, "every span of b's traces at a gateway")
			split := 0
			at := where()
			for _, id := range ofB {
				if !assert.Len(t, at[id], 1, "trace %x whole at one gateway", id[:4]) {
					split++
				}
			}
			t.Logf("the killed members' traces %d, of which the agents send the late spans to another gateway than g %d; split %d", len(ofB), notViaG, split)
		})
	}
}
