package router

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/tailsift/tailsift/internal/ring"
)

// A failover from a member's queue: the spans of a request the member
// could not deliver go to the members up, at once, over their
// connections, so that they count once in sent_spans and spans_routed.

// errNoSpans is reroute's error for a request without spans: a split finds
// no member for it.
var errNoSpans = errors.New("the request holds no spans to fail over")

// reroute sends the spans of a request that member from could not deliver to
// the members now up, in hash order. It fails, without sending anything, when
// some span has no member up, or when the request has no spans.
//
// Each member's part is sent at once, not through its queue, and reroute
// returns when each was answered: from's push returns only once they are
// delivered (or queued at their member), so that exporterhelper counts its
// spans sent once, in from's sent_spans, and spans_routed, which counted
// them at from, does not count them again (spans_rerouted does, at the
// member they go to, as they are routed). A part not taken at once (a
// refusal, no answer in time) goes into its member's queue, for its
// retries, as before, and is counted sent and routed there too.
func (r *Router) reroute(ctx context.Context, req *request, from *member) error {
	st := r.state.Load()
	down := func(i int) bool { return st.members[i] == from || st.down(i) }
	prefix := r.cfg.Prefix
	if r.cfg.Reprefix != nil {
		if p := r.cfg.Reprefix(req.bytes()); p != nil {
			prefix = p
		}
	}
	t := &targets{ring: st.ring, down: down, strict: true, prefix: prefix, direct: true}
	s := r.splitters.Get().(*splitter)
	s.maxBytes = r.cfg.MaxRequestBytes
	parts, ok, err := s.split(req.bytes(), t)
	var before int
	if err == nil && ok {
		before = reroutedBefore(s, st, from)
	}
	s.batch.Reset() // do not keep the request reachable from the pool
	r.splitters.Put(s)
	switch {
	case err != nil:
		return consumererror.NewPermanent(fmt.Errorf("split traces by member: %w", err))
	case !ok:
		return errAllDown
	case len(parts) == 0:
		return errNoSpans
	}
	// Counted re-routed as they are routed, before they are sent, as the
	// parts of a first routing are: those from's queue held as re-routed
	// already (another member's, down) were counted when they were routed
	// to from, and are not again (TestReroutedFromQueueCountsOnce).
	// Which part holds them is not kept: the first parts' counts go.
	for i := range parts {
		again := min(before, parts[i].rerouted)
		before -= again
		r.obs.Routed(ctx, st.members[parts[i].member].addr, 0, parts[i].rerouted-again)
	}
	// Not bounded by the push's own deadline, which a member that timed
	// out has used up: by the send timeout and Shutdown's deadline.
	queue := r.sendDirect(context.WithoutCancel(ctx), st, parts, t)
	if len(queue) == 0 {
		return nil
	}
	for i := range queue {
		queue[i].rerouted = 0 // counted already
	}
	return r.sendParts(ctx, st, queue, t)
}

// sendDirect sends each part at once to its member (member.sendDirect),
// in parallel, and returns the parts not taken, for the members' queues. A
// part whose member its send found down (refused, or hung) goes on to the
// next member up in hash order in the same way, a round at a time (at most
// one per member), rather than into the queue of a member that is down,
// which would fail it over again and count it sent and routed twice
// (TestFailedOverTwiceCountsOnce). A part with no other member up, or
// refused for another reason, or sent while the member set changed, is
// returned.
func (r *Router) sendDirect(ctx context.Context, st *state, parts []part, t *targets) []part {
	var queue []part
	for range st.members {
		errs := make([]error, len(parts))
		var wg sync.WaitGroup
		for i, p := range parts {
			wg.Go(func() { errs[i] = st.members[p.member].sendDirect(ctx, p.data) })
		}
		wg.Wait()
		var down []part
		for i, p := range parts {
			switch {
			case errs[i] == nil:
				putBuffer(p.data)
			case st.down(p.member) && r.state.Load() == st:
				down = append(down, p)
			default:
				queue = append(queue, p)
			}
		}
		parts = nil
		for _, p := range down {
			more, ok := r.resplit(ctx, p, t)
			if !ok {
				queue = append(queue, p)
				continue
			}
			// p.data is not put back in the pool: a send that failed
			// may leave gRPC holding it a while.
			parts = append(parts, more...)
		}
		if len(parts) == 0 {
			return queue
		}
	}
	return append(queue, parts...)
}

// resplit splits p's spans (behind t's prefix) over the members t does not
// skip, which now include p's member, found down, and counts them
// re-routed where they go (part.rerouted: those counted re-routed). ok is
// false when some span has no member up.
func (r *Router) resplit(ctx context.Context, p part, t *targets) ([]part, bool) {
	s := r.splitters.Get().(*splitter)
	s.maxBytes = r.cfg.MaxRequestBytes
	parts, ok, err := s.split(p.data[len(t.prefix):], t)
	s.batch.Reset()
	r.splitters.Put(s)
	if err != nil || !ok || len(parts) == 0 {
		return nil, false
	}
	// Every span of p is re-routed now (p's member, its owner or the next
	// one up, is down); p.rerouted of them were counted so already.
	fresh := p.spans - p.rerouted
	for i := range parts {
		n := min(fresh, parts[i].spans)
		r.obs.Routed(ctx, t.ring.Members()[parts[i].member], 0, n)
		fresh -= n
		parts[i].rerouted = parts[i].spans
	}
	return parts, true
}

// reroutedBefore counts the spans of the request s split for a failover
// from member from that are re-routed now and were re-routed when they were
// routed to from: their trace's owner is another member, down.
func reroutedBefore(s *splitter, st *state, from *member) int {
	n := 0
	var lastID [16]byte
	last := false
	for i := range s.batch.Spans {
		sp := &s.batch.Spans[i]
		if i == 0 || sp.TraceID != lastID {
			lastID = sp.TraceID
			o := st.ring.Owner(ring.Hash(sp.TraceID))
			last = o >= 0 && st.members[o] != from && st.down(o)
		}
		if last {
			n++
		}
	}
	return n
}
