package cluster

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Budget is the sampling budget of a gateway whose budget the cluster
// shares (cluster::budget: shared); *sampling.Engine implements it.
type Budget interface {
	// BudgetRate is the configured rate: the whole cluster's.
	BudgetRate() float64
	// BudgetDemand is what this gateway's policies keep per second
	// before the budget, at now (Unix nanoseconds).
	BudgetDemand(now int64) float64
	// SetBudgetRate sets this gateway's share of the rate.
	SetBudgetRate(rate float64)
}

// Demand is a member's report of its budget demand, sent to every other
// member each budgetInterval.
type Demand struct {
	// From is the sender's cluster::self.
	From string
	// PerSecond is its demand (Budget.BudgetDemand).
	PerSecond float64
}

// Fleet budget timing: each member reports its demand every budgetInterval;
// a report older than budgetStale counts as missing (three lost reports in
// a row).
const (
	budgetInterval = time.Second
	budgetStale    = 3 * budgetInterval
)

// fleetBudget shares a budget among the members of a cluster. Each member
// reports its demand to the others; each takes the share
//
//	share = R·local/total                      when total > R
//	share = local + (R - total)/(fresh + 1)    otherwise
//
// where total is the demand of this member and of the peers whose report is
// fresh (fresh of them), and R is the budget less what the peers without a
// fresh report, or that this gateway's own report could not be sent to
// (the router has them down), are assumed to take: budget/N each, N the
// members counted with this gateway. The shares of the members that hear each other add up
// to R, and each member keeps at least its demand while the fleet is under
// budget, so its unused part goes to the others.
//
// It fails open, to budget/N: a peer that went silent (down, partitioned,
// or an older version) falls back to budget/N itself, having no fresh
// report either, so that is what it is assumed to take; when no peer is
// heard from, every gateway takes budget/N and the fleet still keeps at
// most the budget, while each gateway goes on deciding on its own. Falling
// back to the whole local budget instead would let a fleet whose control
// traffic fails keep N times the budget, the very thing this prevents. A
// dead peer leaves the member set after a membership interval, and its
// part returns to the others then.
type fleetBudget struct {
	b    Budget
	self string
	rate float64 // the configured, cluster-wide rate

	mu    sync.Mutex
	peers map[string]report
	// unsent are the peers the last report could not be sent to: they
	// count as silent too, so that a gateway whose reports do not get out
	// falls back to budget/N as its peers assume it does.
	unsent map[string]bool
}

type report struct {
	perSecond float64
	at        time.Time // when this gateway received it (its own clock)
}

func newFleetBudget(b Budget, self string) *fleetBudget {
	return &fleetBudget{b: b, self: self, rate: b.BudgetRate(), peers: map[string]report{}, unsent: map[string]bool{}}
}

// observe takes a peer's report, received at now.
func (f *fleetBudget) observe(d *Demand, now time.Time) {
	if d.From == f.self {
		return
	}
	f.mu.Lock()
	f.peers[d.From] = report{perSecond: d.PerSecond, at: now}
	f.mu.Unlock()
}

// sent records whether this gateway's report reached peer's sending queue.
func (f *fleetBudget) sent(peer string, ok bool) {
	f.mu.Lock()
	if ok {
		delete(f.unsent, peer)
	} else {
		f.unsent[peer] = true
	}
	f.mu.Unlock()
}

// update computes this gateway's share among members at now, sets it as the
// budget's rate and returns it with the local demand it is based on.
// Reports of gateways that are no longer members are forgotten.
func (f *fleetBudget) update(members []string, now time.Time) (share, local float64) {
	local = max(f.b.BudgetDemand(now.UnixNano()), 0)
	n := len(members)
	if !slices.Contains(members, f.self) {
		n++ // a new gateway not yet listed, or one draining: it still decides
	}
	f.mu.Lock()
	var peerDemand float64
	fresh, stale := 0, 0
	for _, m := range members {
		if m == f.self {
			continue
		}
		r, ok := f.peers[m]
		if ok && now.Sub(r.at) <= budgetStale && !f.unsent[m] {
			peerDemand += r.perSecond
			fresh++
		} else {
			stale++
		}
	}
	for addr := range f.peers {
		if !slices.Contains(members, addr) {
			delete(f.peers, addr)
		}
	}
	for addr := range f.unsent {
		if !slices.Contains(members, addr) {
			delete(f.unsent, addr)
		}
	}
	f.mu.Unlock()
	avail := f.rate * float64(n-stale) / float64(n)
	total := local + peerDemand
	if total > avail {
		share = avail * local / total
	} else {
		share = local + (avail-total)/float64(fresh+1)
	}
	f.b.SetBudgetRate(share)
	return share, local
}

// budgetLoop updates this gateway's share and reports its demand to the
// other members every budgetInterval, until ctx ends.
func (n *Node) budgetLoop(ctx context.Context) {
	defer close(n.budgetDone)
	t := n.clock.NewTimer(budgetInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		n.shareBudget(ctx)
		t.Reset(budgetInterval)
	}
}

// shareBudget runs one round of budgetLoop.
func (n *Node) shareBudget(ctx context.Context) {
	n.setMu.Lock()
	members := slices.Clone(n.members)
	n.setMu.Unlock()
	_, local := n.fleet.update(members, n.clock.Now())
	data := AppendControl(nil, &Control{Demand: &Demand{From: n.cfg.Self, PerSecond: local}})
	for _, m := range members {
		if m == n.cfg.Self {
			continue
		}
		err := n.router.Send(ctx, m, data, 0)
		if err != nil {
			n.logger.Debug("Reporting the budget demand failed", zap.String("member", m), zap.Error(err))
		}
		n.fleet.sent(m, err == nil)
	}
}
