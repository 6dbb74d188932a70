package cluster

import (
	"context"
	"slices"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/ring"
)

// The decisions a handover sends: each to its trace's owner among the
// other members or, when that member is found down, to the next member up
// in hash order, where the agents' failover and this gateway's forwarding
// send the trace's late spans; and each once per member, so that
// cluster_decisions_handed_over counts a decision once for each member
// that took it.

// routing is where decisions go under one member set: a trace's owner
// among the other members, or the next member up in hash order when the
// owner is found down, as the router fails spans over. It depends on the
// ring and the members found down only, so that where a decision went can
// be told again after a change: only those whose place changed, or that
// did not go, are sent again.
type routing struct {
	ring *ring.Ring
	gen  uint64 // the view's gen of ring
	// all is every member, self (this gateway) included, for nextUp;
	// draining, whether this gateway drained when rt was made.
	all      *ring.Ring
	self     string
	draining bool
	// down and refused are by member index: a member found down (the next
	// member up takes its decisions), and one that refused a send for
	// another reason (its decisions did not go, or not all).
	down, refused []bool
	// nowhere: some decision had no member up.
	nowhere bool
}

// newRouting returns the routing over v's other members (others and gen,
// v's or those of a view a handover took since, whose all is all), the
// members the router has down already skipped.
func (n *Node) newRouting(all, others *ring.Ring, gen uint64) *routing {
	rt := &routing{
		ring: others, gen: gen, down: make([]bool, others.Len()), refused: make([]bool, others.Len()),
		all: all, self: n.cfg.Self, draining: n.draining.Load(),
	}
	for i, m := range others.Members() {
		rt.down[i] = n.router.Down(m)
	}
	return rt
}

// here is target's answer for a decision that stays at this gateway: its
// owner is down and its trace's late spans come here (nextUp).
const here = -2

// target is the index of the member the decision of the trace at hash h
// goes to: its owner, or, when the owner is down, the member where the
// trace's late spans end (nextUp); here for this gateway, -1 when no
// member is up.
func (rt *routing) target(h uint64) int {
	if rt.all == nil {
		return rt.ring.Next(h, func(i int) bool { return rt.down[i] })
	}
	m := nextUp(rt.all, rt.self, rt.draining, h, func(m string) bool {
		i := rt.ring.Index(m)
		return i >= 0 && rt.down[i]
	})
	if m == rt.self {
		return here
	}
	i := rt.ring.Index(m)
	if i >= 0 && rt.down[i] {
		return -1
	}
	return i
}

// at is where the decision of the trace at h is once sent under rt: the
// member that took it (this gateway when it stays here), "" when it did
// not go.
func (rt *routing) at(h uint64) string {
	switch i := rt.target(h); {
	case i == here:
		return rt.self
	case i < 0 || rt.refused[i]:
		return ""
	default:
		return rt.ring.Members()[i]
	}
}

// settled reports whether every decision went under rt, the member set is
// still rt's (gen), and now's members down are rt's (a member killed, or
// back up, since: its decisions go elsewhere; TestDrainDecisionsAfterMemberKilled).
func (rt *routing) settled(gen uint64, now *routing) bool {
	return rt.gen == gen && !rt.nowhere && !slices.Contains(rt.refused, true) &&
		(now == nil || slices.Equal(rt.down, now.down))
}

// notAt keeps of d the decisions that prev did not put where next sends
// them: those that did not go, those whose member changed, and those of
// the traces in fresh (made since prev: prev did not send them).
func notAt(d *Decisions, prev, next *routing, fresh map[uint64]struct{}) {
	moved := func(h uint64) bool {
		if _, ok := fresh[h]; ok {
			return true
		}
		was := prev.at(h)
		return was == "" || was != next.at(h)
	}
	d.Kept = slices.DeleteFunc(d.Kept, func(k Kept) bool { return !moved(ring.Hash(k.ID)) })
	d.Dropped = slices.DeleteFunc(d.Dropped, func(h uint64) bool { return !moved(h) })
}

// decisions hands shard sh's foreign decisions to their owners. After
// prev, where this shard's decisions went at a draining gateway's last
// handover, only those not where they go now are sent, and those of the
// traces given back to be decided here since (givenBack); nothing is
// listed when none can be (a draining gateway learns no other new
// decision of others' traces). It returns where the decisions are, and
// false when the handover must stop (time or budget used up).
func (h *handover) decisions(ctx context.Context, sh int, prev *routing) (*routing, bool) {
	fresh := h.n.givenBack
	rt := h.n.newRouting(h.all, h.others, h.gen)
	if prev != nil && prev.settled(h.gen, rt) && len(fresh) == 0 {
		return prev, true
	}
	d, err := h.n.buf.ForeignDecisions(ctx, sh, h.n.Owns)
	if err != nil {
		return prev, false
	}
	send := func(rt *routing, d *Decisions) bool {
		_, ok := h.n.sendDecisions(ctx, rt, d, Control{Forwarded: true}, h.n.router.SendNow, h.pace, func(p *Decisions) {
			h.decisionCount += p.Len()
			for _, k := range p.Kept {
				delete(fresh, ring.Hash(k.ID))
			}
			for _, hash := range p.Dropped {
				delete(fresh, hash)
			}
		})
		return ok
	}
	if prev != nil {
		notAt(&d, prev, rt, fresh)
		if d.Len() == 0 && prev.settled(h.gen, rt) {
			return prev, true // none of those traces decided yet
		}
	}
	ok := send(rt, &d)
	if ok && h.ringMoved() {
		// The set changed since the handover took it: to the owners in
		// the new set, those a member that left refused and those a
		// member that joined owns now, which went to their former owner
		// (TestHandOverDecisionsAfterAdd); not again those a member that
		// stays took (TestHandOverMoveResendsDecisions).
		if d, err = h.n.buf.ForeignDecisions(ctx, sh, h.n.Owns); err != nil {
			return rt, false
		}
		next := h.n.newRouting(h.all, h.others, h.gen)
		notAt(&d, rt, next, fresh)
		rt, ok = next, send(next, &d)
	}
	return rt, ok
}

// controlFraming bounds what a decisions control (no demand) takes besides
// its decisions: the payload's version, flags and two counts, the
// attribute's key and the protobuf framing around it.
const controlFraming = 128

// sendDecisions sends d to their members under rt with send (the router's
// SendNow, which waits for the member's answer, or Send, which queues), in
// requests of at most a handover chunk, each behind ctl with its part of
// d. A member that a send finds down (rt.down from then on) has its part
// and the rest of its decisions sent to the next member up in hash order.
// pace, when not nil, is charged each request first and ends the sends
// when it returns false. The decisions a send refuses for another reason
// are returned (they stay remembered where they were), with the rest of
// that member's, which are not tried once a send to it failed, and those
// with no member up; sent is told each part that went. rt says where the
// decisions went.
func (n *Node) sendDecisions(ctx context.Context, rt *routing, d *Decisions, ctl Control,
	send func(ctx context.Context, member string, data []byte) error,
	pace func(ctx context.Context, bytes int) bool, sent func(*Decisions),
) (refused Decisions, ok bool) {
	byMember := make(map[int]*Decisions)
	var kept Decisions // those that stay here: remembered here already
	at := func(hash uint64) *Decisions {
		o := rt.target(hash)
		if o == here {
			return &kept
		}
		if o < 0 {
			rt.nowhere = true
			return &refused
		}
		if byMember[o] == nil {
			byMember[o] = &Decisions{}
		}
		return byMember[o]
	}
	add := func(d *Decisions) {
		for _, k := range d.Kept {
			p := at(ring.Hash(k.ID))
			p.Kept = append(p.Kept, k)
		}
		for _, hash := range d.Dropped {
			p := at(hash)
			p.Dropped = append(p.Dropped, hash)
		}
	}
	add(d)
	// Decisions per request, at most: a kept decision with its mark word
	// (flagMarks, when some has one) takes markSize more, and the
	// control's framing a little, so that a request stays within a chunk
	// (under the 4 MiB a peer's gRPC server takes by default, with the
	// default bytes_per_second).
	perKept := keptSize
	if d.marked() {
		perKept += markSize
	}
	per := max((n.chunk()-controlFraming)/perKept, 1)
	for len(byMember) > 0 {
		// A member found down adds to the others' parts: one member at
		// a time, the lowest index first.
		member := -1
		for m := range byMember {
			if member < 0 || m < member {
				member = m
			}
		}
		all := byMember[member]
		delete(byMember, member)
		addr := rt.ring.Members()[member]
		for all.Len() > 0 {
			part := ctl
			nk := min(len(all.Kept), per)
			part.Decisions.Kept, all.Kept = all.Kept[:nk], all.Kept[nk:]
			nd := min(len(all.Dropped), per-nk)
			part.Decisions.Dropped, all.Dropped = all.Dropped[:nd], all.Dropped[nd:]
			data := AppendControl(nil, &part)
			if pace != nil && !pace(ctx, len(data)) {
				// Not sent: this member's and the others' that wait.
				rt.refused[member] = true
				for m := range byMember {
					rt.refused[m] = true
				}
				return refused, false
			}
			err := send(ctx, addr, data)
			if err != nil && n.router.Down(addr) {
				// Killed, and still in the set: where the agents send
				// its traces, the next member up, takes its decisions.
				n.logger.Info("Member down: its decisions go to the next member up in hash order",
					zap.String("member", addr), zap.Error(err))
				rt.down[member] = true
				add(&part.Decisions)
				add(all)
				break
			}
			if err != nil {
				n.logger.Warn("Decisions not handed over", zap.String("member", addr), zap.Error(err))
				// A member that did not take one part would keep the
				// next ones waiting as long (one that never answers).
				rt.refused[member] = true
				refused.Kept = append(append(refused.Kept, part.Decisions.Kept...), all.Kept...)
				refused.Dropped = append(append(refused.Dropped, part.Decisions.Dropped...), all.Dropped...)
				break
			}
			if sent != nil {
				sent(&part.Decisions)
			}
			n.obs.DecisionsHandedOver(ctx, n.toCount(&part.Decisions))
		}
	}
	return refused, true
}
