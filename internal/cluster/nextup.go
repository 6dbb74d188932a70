package cluster

import (
	"github.com/tailsift/tailsift/internal/ring"
)

// Where the traces of a member killed before the member set drops it go:
// where their late spans end. The agents send those to the next member up
// after it in the ring of every gateway, this one included; that member
// does not own them and forwards them, as it forwards any span of a trace
// it does not own, to the next member up after the dead one in its own
// ring, which leaves it out, and the gateway that gets them forwarded
// keeps them (or, draining, relays them to its own next member up). A
// handover that sent such a trace to the first member up split it
// whenever that member was not this gateway (TestHandOverToKilledMemberLateSpans).

// nextUp returns the member (of all, this gateway self included) where
// the spans of the trace at hash h end while its owner is down: self when
// they end here (this gateway among them, no other member up included). down reports whether another member is marked down (self
// never is). draining: this gateway passes on what is forwarded to it. A
// trace whose owner is up goes to its owner; "" when no member is up.
func nextUp(all *ring.Ring, self string, draining bool, h uint64, down func(member string) bool) string {
	members := all.Members()
	o := all.Owner(h)
	if o < 0 {
		return ""
	}
	isDown := func(i int) bool { return members[i] != self && down(members[i]) }
	at := func(i int) string {
		if i < 0 {
			return ""
		}
		return members[i]
	}
	// Forwarded (or relayed) by this gateway's router to the next member
	// up after it, or kept here when there is none.
	fromHere := func(i int) string {
		if m := at(all.Next(h, func(j int) bool { return j == i || isDown(j) })); m != "" {
			return m
		}
		return self
	}
	if members[o] == self {
		return fromHere(o) // foreign only while this gateway drains
	}
	if !isDown(o) {
		return members[o]
	}
	first := all.Next(h, isDown) // where the agents send them
	if first < 0 {
		return ""
	}
	if members[first] == self {
		return fromHere(first)
	}
	// Forwarded by first to the next member up after the dead owner in
	// its ring, which leaves first out; first keeps them when it has no
	// other member up.
	second := all.Next(h, func(i int) bool { return i == first || isDown(i) })
	switch {
	case second < 0:
		return members[first]
	case members[second] == self && draining:
		return members[first] // relayed back to first, which keeps them
	}
	return members[second]
}

// nextUpOf is nextUp over the view v as this gateway sees it now.
func (n *Node) nextUpOf(v *view) func(h uint64, down func(string) bool) string {
	draining := n.draining.Load()
	return func(h uint64, down func(string) bool) string {
		return nextUp(v.all, n.cfg.Self, draining, h, down)
	}
}

// endsHere reports, for the trace at hash h, whether its owner is marked
// down and its late spans end at this gateway (nextUp), under v.
func (n *Node) endsHere(v *view) func(h uint64) bool {
	next := n.nextUpOf(v)
	return func(h uint64) bool {
		o := v.all.Owner(h)
		if o < 0 || o == v.self || !n.router.Down(v.all.Members()[o]) {
			return false
		}
		return next(h, n.router.Down) == n.cfg.Self
	}
}
