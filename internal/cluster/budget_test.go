package cluster

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// fleetGateway is one in-process gateway of a fleet budget test: a real
// sampling engine with a budget, and its share of it.
type fleetGateway struct {
	addr   string
	engine *sampling.Engine
	fleet  *fleetBudget
	rate   int // traces per second it decides, all kept by its policy
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
			msg := AppendControl(nil, &Control{Demand: &Demand{From: from.addr, PerSecond: from.engine.BudgetDemand()}})
			c, rest, ok, err := SplitControl(msg)
			require.NoError(t, err)
			require.True(t, ok)
			require.Empty(t, rest)
			for _, to := range gws {
				if to.fleet != nil {
					to.fleet.observe(c.Demand, now)
				}
			}
		}
		for _, g := range gws {
			if g.fleet != nil {
				g.fleet.update(members, now)
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
