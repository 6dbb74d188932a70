package cluster

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

// fleetGateway is one in-process gateway of a fleet budget test: a real
// sampling engine with a budget, and its share of it.
type fleetGateway struct {
	addr   string
	engine *sampling.Engine
	fleet  *fleetBudget
	rate   int     // traces per second it decides, all kept by its policy
	share  float64 // its last share
	// silent: cut off from the others (its reports do not reach them,
	// theirs do not reach it).
	silent bool
}

func newFleetGateway(t *testing.T, addr string, budget float64, rate int) *fleetGateway {
	t.Helper()
	policies := []sampling.PolicyConfig{
		sampling.NewPolicyConfig("all", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 100}),
	}
	e, err := sampling.NewEngine(policies, sampling.WithBudget(sampling.BudgetConfig{TracesPerSecond: budget}))
	require.NoError(t, err)
	return &fleetGateway{addr: addr, engine: e, fleet: newFleetBudget(e, addr), rate: rate}
}

// decideSecond decides one second of g's traffic from base and returns
// how many traces g kept.
func (g *fleetGateway) decideSecond(rng *rand.Rand, base time.Time) int {
	kept := 0
	var tr sampling.Trace
	for k := range g.rate {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		tr.SetIdentity(id, nil)
		tr.SpanCount, tr.StatusMask = 1, sampling.StatusOKBit
		tr.Start = uint64(base.UnixNano())
		tr.End = tr.Start + uint64(time.Millisecond)
		tr.Now = base.UnixNano() + int64(k)*int64(time.Second)/int64(g.rate)
		if g.engine.Decide(&tr).Keep() {
			kept++
		}
	}
	return kept
}

// runFleet runs gws for secs seconds of fake time from second start: each
// second every gateway decides its traffic, then the gateways that are not
// silent report their demand to the others (through the control's wire
// encoding) and each takes its share; a gateway without a fleet budget
// (nil) keeps its own. It returns the traces each kept.
func runFleet(t *testing.T, gws []*fleetGateway, rng *rand.Rand, start, secs int) []int {
	t.Helper()
	members := make([]string, len(gws))
	for i, g := range gws {
		members[i] = g.addr
	}
	kept := make([]int, len(gws))
	for s := start; s < start+secs; s++ {
		base := time.Unix(int64(s), 0)
		for i, g := range gws {
			kept[i] += g.decideSecond(rng, base)
		}
		now := base.Add(time.Second)
		for _, from := range gws {
			if from.silent || from.fleet == nil {
				continue
			}
			msg := AppendControl(nil, &Control{Demand: &Demand{From: from.addr, PerSecond: from.engine.BudgetDemand(now.UnixNano())}})
			c, rest, ok, err := SplitControl(msg)
			require.NoError(t, err)
			require.True(t, ok)
			require.Empty(t, rest)
			for _, to := range gws {
				if to.fleet != nil && !to.silent {
					to.fleet.observe(c.Demand, now)
				}
			}
		}
		for _, g := range gws {
			if g.fleet != nil {
				g.share, _ = g.fleet.update(members, now)
			}
		}
	}
	return kept
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

func skewedFleet(t *testing.T, budget float64) []*fleetGateway {
	t.Helper()
	return []*fleetGateway{
		newFleetGateway(t, "10.0.0.1:4317", budget, 300),
		newFleetGateway(t, "10.0.0.2:4317", budget, 100),
		newFleetGateway(t, "10.0.0.3:4317", budget, 20),
	}
}

// TestFleetBudgetConverges: three gateways with skewed traffic (300, 100
// and 20 traces/s, 420 in all) under a shared budget of 100 traces/s keep
// 100/s together, each in proportion to its demand; with the budget per
// gateway (as before) they keep about 220/s.
func TestFleetBudgetConverges(t *testing.T) {
	const budget, secs = 100, 30
	rng := rand.New(rand.NewPCG(1, 2))
	gws := skewedFleet(t, budget)
	runFleet(t, gws, rng, 0, 10) // warm-up: demand measured, shares set
	kept := runFleet(t, gws, rng, 10, secs)
	total := float64(sum(kept)) / secs
	t.Logf("shared budget %d/s: kept %.1f/s in all, %v in %ds", budget, total, kept, secs)
	assert.InDelta(t, budget, total, budget*0.10, "kept %v in %ds", kept, secs)
	for i, want := range []float64{300, 100, 20} {
		assert.InDelta(t, budget*want/420, float64(kept[i])/secs, budget*0.05, "gateway %d keeps in proportion to its demand", i)
		// The budget_rate gauge reads the share in effect.
		assert.InDelta(t, gws[i].share, gws[i].engine.BudgetEffectiveRate(), 1e-9, "gateway %d", i)
		assert.InDelta(t, budget*want/420, gws[i].engine.BudgetEffectiveRate(), budget*0.05, "gateway %d's share", i)
	}

	local := skewedFleet(t, budget)
	for _, g := range local {
		g.fleet = nil
	}
	runFleet(t, local, rng, 0, 10)
	kl := runFleet(t, local, rng, 10, secs)
	t.Logf("budget per gateway: kept %.1f/s in all, %v in %ds", float64(sum(kl))/secs, kl, secs)
	assert.InDelta(t, 220, float64(sum(kl))/secs, 22, "a budget per gateway: the fleet keeps 100+100+20 per second, got %v", kl)
}

// TestFleetBudgetFailOpen: a gateway cut off from the others falls back to
// budget/N, and the others keep budget/N for it and share the rest: the
// fleet stays within the budget and every gateway goes on keeping traces.
func TestFleetBudgetFailOpen(t *testing.T) {
	const budget, secs = 90.0, 30
	tests := []struct {
		name   string
		silent []bool
		// shares once the silent gateways' reports are stale
		shares []float64
		kept   float64 // the fleet's kept traces per second
	}{
		{
			name:   "hot gateway silent",
			silent: []bool{true, false, false},
			// 30 for it; 60 for the others, by demand (100 and 20)
			shares: []float64{30, 50, 10},
			kept:   90,
		},
		{
			name:   "cold gateway silent",
			silent: []bool{false, false, true},
			// 30 for it (it keeps its 20); 60 for the others by demand
			shares: []float64{45, 15, 30},
			kept:   80,
		},
		{
			name:   "nobody hears anybody",
			silent: []bool{true, true, true},
			shares: []float64{30, 30, 30},
			kept:   80,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			gws := skewedFleet(t, budget)
			runFleet(t, gws, rng, 0, 10)
			for i, g := range gws {
				g.silent = tt.silent[i]
			}
			runFleet(t, gws, rng, 10, 2)
			for i, g := range gws {
				if tt.silent[i] {
					continue
				}
				assert.InDelta(t, budget*float64(g.rate)/420, g.share, 1.5, "gateway %d: a report within %v is fresh", i, budgetStale)
			}
			runFleet(t, gws, rng, 12, 10) // the reports go stale; demand settles
			for i, g := range gws {
				assert.InDelta(t, tt.shares[i], g.share, 1, "gateway %d's share", i)
			}
			kept := runFleet(t, gws, rng, 22, secs)
			total := float64(sum(kept)) / secs
			t.Logf("kept %.1f/s in all, %v in %ds", total, kept, secs)
			assert.InDelta(t, tt.kept, total, tt.kept*0.1)
			for i, k := range kept {
				assert.Positive(t, k, "gateway %d still keeps traces", i)
			}
		})
	}
}

// TestFleetBudgetUnsent: a peer this gateway's report cannot be sent to
// counts as silent even while its own reports arrive, since it counts this
// gateway as silent; a send that works again restores it. A gateway that
// is no longer a member is forgotten.
func TestFleetBudgetUnsent(t *testing.T) {
	e := &fakeBudget{rate: 90, demand: 60}
	f := newFleetBudget(e, "a:1")
	members := []string{"a:1", "b:1", "c:1"}
	now := time.Unix(100, 0)
	f.observe(&Demand{From: "b:1", PerSecond: 60}, now)
	f.observe(&Demand{From: "c:1", PerSecond: 60}, now)
	share, local := f.update(members, now)
	assert.InDelta(t, 30, share, 1e-9, "90·60/180")
	assert.InDelta(t, 60, local, 1e-9)
	assert.InDelta(t, 30, e.set, 1e-9, "the share is the budget's rate")

	f.sent("c:1", false)
	share, _ = f.update(members, now)
	assert.InDelta(t, 30, share, 1e-9, "c keeps 30; a and b share 60 by demand")
	f.sent("c:1", true)
	f.observe(&Demand{From: "b:1", PerSecond: 0}, now)
	share, _ = f.update(members, now)
	assert.InDelta(t, 90*60/120.0, share, 1e-9, "c is heard again; b wants nothing")

	share, _ = f.update([]string{"a:1"}, now)
	assert.InDelta(t, 90, share, 1e-9, "alone, a takes the whole budget")
	assert.Empty(t, f.peers, "former members are forgotten")

	e.demand = 10
	f.observe(&Demand{From: "b:1", PerSecond: 20}, now)
	share, _ = f.update([]string{"a:1", "b:1"}, now)
	assert.InDelta(t, 10+(90-30)/2.0, share, 1e-9, "under budget: its demand and half the rest")
}

// fakeBudget is a Budget with a set demand.
type fakeBudget struct {
	mu                sync.Mutex
	rate, demand, set float64
}

func (b *fakeBudget) BudgetRate() float64 { return b.rate }

func (b *fakeBudget) BudgetDemand(int64) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.demand
}

func (b *fakeBudget) get() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.set
}

func (b *fakeBudget) SetBudgetRate(r float64) {
	b.mu.Lock()
	b.set = r
	b.mu.Unlock()
}

// nodeServer is a gateway's OTLP gRPC server that hands what it receives
// to its node, as the tailsift receiver does.
type nodeServer struct {
	ptraceotlp.UnimplementedGRPCServer
	node atomic.Pointer[Node]
}

func (s *nodeServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	buf, err := req.MarshalProto()
	if err != nil {
		return ptraceotlp.NewExportResponse(), err
	}
	if n := s.node.Load(); n != nil {
		_, err = n.Ingest(ctx, buf, nil)
	}
	return ptraceotlp.NewExportResponse(), err
}

// TestNodesShareBudget: three nodes on loopback gRPC servers, with
// cluster::budget: shared and skewed demands (60, 30 and 10 for a budget of
// 50), report to each other every second of their clock and converge to
// shares in proportion; once one stops, the others keep budget/3 for it
// when its reports go stale, and share the rest.
func TestNodesShareBudget(t *testing.T) {
	clk := clocktest.NewFake(time.Unix(0, 0))
	srvs := make([]*nodeServer, 3)
	addrs := make([]string, 3)
	for i := range srvs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs[i] = l.Addr().String()
		srvs[i] = &nodeServer{}
		g := grpc.NewServer()
		ptraceotlp.RegisterGRPCServer(g, srvs[i])
		go func() { _ = g.Serve(l) }()
		t.Cleanup(g.Stop)
	}
	budgets := make([]*fakeBudget, 3)
	nodes := make([]*Node, 3)
	for i, demand := range []float64{60, 30, 10} {
		cfg := NewDefaultConfig()
		cfg.Self, cfg.Members.Static, cfg.Drain, cfg.Budget = addrs[i], addrs, 0, BudgetShared
		cfg.GRPC.TLS.Insecure = true
		budgets[i] = &fakeBudget{rate: 50, demand: demand}
		nodes[i] = NewNode(cfg, &fakeBuffer{}, Settings{
			ID: component.MustNewID("tailsift"), Telemetry: componenttest.NewNopTelemetrySettings(), Clock: clk, Budget: budgets[i],
		})
		srvs[i].node.Store(nodes[i])
		require.NoError(t, nodes[i].Start(context.Background(), componenttest.NewNopHost()))
	}
	stopped := make([]bool, 3)
	t.Cleanup(func() {
		for i, n := range nodes {
			if !stopped[i] {
				require.NoError(t, n.Shutdown(context.Background()))
			}
		}
	})
	shares := func(want ...float64) func() bool {
		return func() bool {
			clk.Advance(budgetInterval)
			for i, w := range want {
				if math.Abs(budgets[i].get()-w) > 1e-9 {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, shares(30, 15, 5), 10*time.Second, 10*time.Millisecond, "shares by demand")

	srvs[2].node.Store(nil)
	require.NoError(t, nodes[2].Shutdown(context.Background()))
	stopped[2] = true
	// 50/3 kept for the silent node, 100/3 shared 60:30.
	require.Eventually(t, shares(100.0/3*60/90, 100.0/3*30/90), 10*time.Second, 10*time.Millisecond, "budget/3 kept for the silent node")
}

func TestNodeBudgetLocal(t *testing.T) {
	b := &fakeBudget{rate: 90, demand: 60, set: -1}
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static = "127.0.0.1:1", []string{"127.0.0.1:1", "127.0.0.1:2"}
	n := NewNode(cfg, &fakeBuffer{}, Settings{Budget: b})
	assert.Nil(t, n.fleet, "cluster::budget: local shares nothing")
	cfg.Budget = BudgetShared
	n = NewNode(cfg, &fakeBuffer{}, Settings{Budget: &fakeBudget{}})
	assert.Nil(t, n.fleet, "no budget, nothing to share")
}
