package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// A member killed before the member set drops it (kill -9, a lost node:
// its address stays in DNS until the next lookup): a handover to it is
// refused, and the member is marked down. The agents send that member's
// traces to the next member up in hash order, and so does this gateway
// when it forwards their spans; the handover must send them there too,
// not stop and decide them here from the part of their spans it holds.

// withErrors marks every fourth trace of td ERROR on its first span, and
// returns those traces.
func withErrors(td ptrace.Traces) map[[16]byte]bool {
	errs := map[[16]byte]bool{}
	seen := map[[16]byte]bool{}
	i := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := [16]byte(sp.TraceID())
				if seen[id] {
					continue
				}
				seen[id] = true
				if i%4 == 0 {
					sp.Status().SetCode(ptrace.StatusCodeError)
					errs[id] = true
				}
				i++
			}
		}
	}
	return errs
}

// TestHandOverToKilledMember: members self, a and b; b is killed before
// the handover (it refuses connections) and is still in the set. Each
// trace must end whole at one place: this gateway's own here, a's at a,
// b's at a too (the next member up, where the agents' failover and this
// gateway's forwarding send their later spans), none decided here for
// want of b. The error traces among them included: whole at one gateway,
// they are decided there on all their spans, and kept.
func TestHandOverToKilledMember(t *testing.T) {
	for _, drain := range []bool{false, true} {
		name := "ring change"
		if drain {
			name = "drain"
		}
		t.Run(name, func(t *testing.T) {
			var w routertest.Workload
			td := w.Batch(40, 2)
			errs := withErrors(td)
			buf := newTraceBuffer(t, td)
			a, b := startGate(t, false), startGate(t, false)
			obs := &countingObserver{}
			n, self := moveNode(t, buf, obs, nil, a.addr, b.addr)
			if drain {
				n.BeginDrain()
			}
			b.srv.Stop() // killed; DNS still lists it
			all := ring.New([]string{self, a.addr, b.addr})
			want := map[[16]byte]string{}
			toB := 0
			for id := range buf.held() {
				owner := all.Members()[all.Owner(ring.Hash(id))]
				switch {
				case owner == self && !drain:
					want[id] = "here"
				case owner == b.addr:
					toB++
					want[id] = lateSpansAt(all, self, a.addr, b.addr, drain, ring.Hash(id))
				default:
					want[id] = a.addr
				}
			}
			require.Positive(t, toB, "b owns some traces")
			n.HandOver(context.Background())

			var misplaced, errsMisplaced, local int
			for id, at := range where(td, buf, a, b) {
				if !assert.Equal(t, map[string]int{want[id]: 2}, at, "trace %x (error %v)", id[:4], errs[id]) {
					misplaced++
					if errs[id] {
						errsMisplaced++
					}
				}
			}
			local = int(obs.local.Load())
			t.Logf("b's traces %d of 40; traces not whole where they belong %d (error traces %d of %d); counted decided here %d; handed over %d",
				toB, misplaced, errsMisplaced, len(errs), local, obs.handed.Load())
			assert.Zero(t, local, "nothing decided here for want of the killed member")
			assert.Equal(t, int64(len(want)-countHere(want)), obs.handed.Load(), "each trace handed over counted once")
		})
	}
}

// lateSpansAt is where the late spans of a trace at h, owned by b, end
// among gateways self, a and b with b killed: the agents send them to
// the next member up after b; self forwards them to a (its only other
// member up), and a forwards them to self, which keeps them ("here"), or
// relays them back to a when it drains.
func lateSpansAt(all *ring.Ring, self, a, b string, drain bool, h uint64) string {
	bi := all.Index(b)
	first := all.Members()[all.Next(h, func(i int) bool { return i == bi })]
	if first == self || drain {
		return a
	}
	return "here"
}

func countHere(want map[[16]byte]string) int {
	n := 0
	for _, w := range want {
		if w == "here" {
			n++
		}
	}
	return n
}

// TestDecisionsToKilledMember: the decisions a killed member owns go to
// the next member up, where its traces' late spans go, rather than
// staying here (a kept trace's late spans would be decided afresh
// there, and dropped unless an ERROR is among them).
func TestDecisionsToKilledMember(t *testing.T) {
	for _, drain := range []bool{false, true} {
		name := "ring change"
		if drain {
			name = "drain"
		}
		t.Run(name, func(t *testing.T) {
			a, b := startGate(t, false), startGate(t, false)
			buf := &decisionsOf{}
			for i := range 40 {
				buf.kept = append(buf.kept, Kept{ID: [16]byte{byte(i), 1, 2, 3}})
			}
			obs := &decisionObserver{}
			n, self := moveNode(t, buf, obs, nil, a.addr, b.addr)
			if drain {
				n.BeginDrain()
			}
			b.srv.Stop()
			n.HandOver(context.Background())
			got := a.decisions()
			all := ring.New([]string{self, a.addr, b.addr})
			missing, toA := 0, 0
			for _, k := range buf.kept {
				h := ring.Hash(k.ID)
				if all.Members()[all.Owner(h)] == b.addr && lateSpansAt(all, self, a.addr, b.addr, drain, h) == "here" {
					// Its late spans come here: the decision stays.
					assert.Zero(t, got[k.ID], "decision %x of a trace whose late spans come here stays here", k.ID[:4])
					continue
				}
				toA++
				if got[k.ID] != 1 {
					missing++
				}
			}
			t.Logf("decisions at a: %d of the %d that go there (each once: %d missing or twice); counted handed over %d", len(got), toA, missing, obs.handed.Load())
			assert.Zero(t, missing, "every decision at a, once")
			assert.Equal(t, int64(toA), obs.handed.Load())
		})
	}
}

// decisionsSettled reports whether a draining n's handovers put every
// decision where it goes under the current member set: the next sweep
// sends none.
func decisionsSettled(n *Node) bool {
	n.handoverMu.Lock()
	defer n.handoverMu.Unlock()
	v := n.view.Load()
	n.backMu.Lock()
	back := len(n.back)
	n.backMu.Unlock()
	if n.handed == nil || back > 0 || len(n.givenBack) > 0 {
		return false
	}
	for _, rt := range n.handed {
		if rt == nil || !rt.settled(v.gen, nil) {
			return false
		}
	}
	return true
}
