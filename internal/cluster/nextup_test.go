package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tailsift/tailsift/internal/ring"
)

// lateSpanEnds follows a late span of the trace at h from an agent to the
// gateway that keeps it, step by step, by the rules the code applies, and
// not by nextUp's reasoning: an agent sends a span to its trace's owner,
// or, the owner down, to the next member up in the ring of every member
// (its router's target); a gateway (Node.Ingest) keeps a forwarded span
// unless it drains and the span is not relayed yet, keeps a span of a
// trace it owns (not while it drains), and otherwise routes it over the
// ring of the other members (applyLocked: its router's ring) to their
// owner, or to the next one up when that one is down, marked forwarded,
// and relayed when it passes on a forwarded span while it drains; with no
// other member up it keeps it (RouteWith fails). Only self may drain.
// from, when not "", is where the span starts, already forwarded (a part
// a handover sent there). It returns the gateway and the hops taken.
func lateSpanEnds(rings *ringsOf, self string, draining bool, h uint64, down map[string]bool, from string) (string, int) {
	members := rings.members
	isDown := func(m string) bool { return m != self && down[m] }
	at, forwarded, relayed := from, from != "", false
	all := rings.of("")
	if at == "" {
		o := all.Owner(h)
		if !isDown(all.Members()[o]) {
			at = all.Members()[o]
		} else if i := all.Next(h, func(i int) bool { return isDown(all.Members()[i]) }); i >= 0 {
			at = all.Members()[i]
		} else {
			return "", 0
		}
	}
	for hops := 0; hops < 2*len(members)+2; hops++ {
		drains := at == self && draining
		if forwarded && (!drains || relayed) {
			return at, hops
		}
		if i := all.Index(at); !drains && i >= 0 && all.Owner(h) == i {
			return at, hops
		}
		others := rings.of(at)
		if others.Len() == 0 {
			return at, hops
		}
		skip := func(i int) bool { return isDown(others.Members()[i]) }
		t := others.Owner(h)
		if skip(t) {
			if t = others.Next(h, skip); t < 0 {
				return at, hops // no other member up: kept here
			}
		}
		relayed = drains && forwarded
		forwarded = true
		at = others.Members()[t]
	}
	return "loop", 0
}

// ringsOf builds a member set's rings once: every member's, and each
// gateway's router's (the others).
type ringsOf struct {
	members []string
	rings   map[string]*ring.Ring
}

// of returns the ring of the members but not (all of them for "").
func (r *ringsOf) of(not string) *ring.Ring {
	if r.rings == nil {
		r.rings = map[string]*ring.Ring{}
	}
	if rg, ok := r.rings[not]; ok {
		return rg
	}
	rg := ring.New(slices.DeleteFunc(slices.Clone(r.members), func(m string) bool { return m == not }))
	r.rings[not] = rg
	return rg
}

// TestNextUpMatchesForwarding compares nextUp, for random rings, random
// members down (never this gateway) and random traces, with where a late
// span of the trace ends when the agents and the gateways forward it
// (lateSpanEnds), and with where the part a handover sends to nextUp's
// member ends: both must be nextUp's answer, so that a trace whose owner
// is down is whole at one gateway.
func TestNextUpMatchesForwarding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases, mismatches := 0, 0
	for trial := range 3000 {
		n := 2 + rng.IntN(6)
		var members []string
		for i := range n {
			members = append(members, fmt.Sprintf("10.0.%d.%d:4317", trial%7, i))
		}
		self := members[rng.IntN(n)]
		draining := rng.IntN(2) == 0
		set := members
		if draining && rng.IntN(4) == 0 {
			// Its own lookup dropped it already.
			set = slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == self })
		}
		down := map[string]bool{}
		for _, m := range members {
			if m != self && rng.IntN(3) == 0 {
				down[m] = true
			}
		}
		rings := &ringsOf{members: set}
		all := rings.of("")
		isDown := func(m string) bool { return down[m] }
		for range 20 {
			h := rng.Uint64()
			o := all.Owner(h)
			if all.Members()[o] == self && !draining {
				continue // owned here: not handed over
			}
			if !down[all.Members()[o]] && all.Members()[o] != self {
				continue // owner up: sent to it
			}
			cases++
			want := nextUp(all, self, draining, h, isDown)
			late, _ := lateSpanEnds(rings, self, draining, h, down, "")
			part := want
			if want != self && want != "" {
				part, _ = lateSpanEnds(rings, self, draining, h, down, want)
			}
			if late != want || part != want {
				mismatches++
				if mismatches <= 10 {
					t.Errorf("members %v self %s draining %v down %v: nextUp %q, late spans end at %q, the part handed over at %q",
						set, self, draining, down, want, late, part)
				}
			}
		}
	}
	t.Logf("%d traces whose owner is down or this draining gateway, %d where nextUp is not where their spans end", cases, mismatches)
	if cases < 1000 {
		t.Fatalf("only %d cases", cases)
	}
}
