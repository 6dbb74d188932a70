package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sends that bypass the members' queues, for a caller that must know what
// a member took before it goes on: a gateway's handover (internal/cluster)
// gives back what a member did not take, to be decided where it was. A
// queued request to a member that accepts and never answers was retried
// for up to exporterhelper's max_elapsed_time (5 minutes), then dropped,
// and dropped too when the router shut down during a retry's back-off:
// the queue tells its caller nothing. (Such a member is now marked down
// after Failover.Timeouts sends unanswered, hung.go, and its queue fails
// over or falls back; a handover still cannot wait that long.)

// Left is what a member did not take of a RouteNow: an encoded TracesData,
// without the prefix, the caller's.
type Left struct {
	Member string // the member it was for
	Data   []byte
	Err    error // why it was not taken
	member int   // Member's index in the state it was sent under
}

// SendNow sends data, an encoded TracesData, to member at once, not
// through its queue, and returns when the member answered, or when ctx
// ended or Settings.Timeout passed: nil only when the member took it. A
// member that refuses it as malformed (INVALID_ARGUMENT) gets
// Settings.Downgrade's form once, as from its queue. A send cut short may
// have been taken all the same.
func (r *Router) SendNow(ctx context.Context, member string, data []byte) error {
	st := r.state.Load()
	if st == nil {
		return ErrNoMembers
	}
	i := st.ring.Index(member)
	if i < 0 {
		return fmt.Errorf("%s is not a member", member)
	}
	return st.members[i].sendNow(ctx, data)
}

// RouteNow is RouteWith without the members' queues: each member's part
// of buf, behind prefix, is sent at once (SendNow), the parts in parallel,
// and RouteNow returns when each was answered or given up. A part whose
// member is found down by its send (it refuses connections: killed, and
// still in the set) goes to the next member up in hash order, as a queued
// part fails over, and as the agents send that member's traces. It
// returns the parts no member took (refused for another reason, not
// answered in time, no other member up, the member set changed
// meanwhile), without prefix; when no member is up for some span of buf,
// that is buf whole, nothing sent. A part is not sent to another member
// for any other refusal: a gateway's handover decides it where it was
// instead, or sends it to the owners of a new member set.
func (r *Router) RouteNow(ctx context.Context, buf, prefix []byte) []Left {
	return r.RouteNowVia(ctx, buf, prefix, nil)
}

// ErrNoNextUp is the error of what RouteNowVia left because its NextUp
// chose no member for it.
var ErrNoNextUp = errors.New("its next member up is none of the members")

// NextUp chooses the member a trace at hash h goes to when its owner is
// down (down reports whether a member is marked down): a member's address,
// or "" (or one not in the set) for none: its spans are then left, with
// ErrNoNextUp.
type NextUp func(h uint64, down func(member string) bool) string

// RouteNowVia is RouteNow with next choosing where the traces of a member
// found down go, rather than the next member up in hash order; nil is
// RouteNow. A gateway's handover sends them where their late spans go,
// which the agents send to the next member up in the ring of every
// gateway, this one included, and which that member forwards on.
func (r *Router) RouteNowVia(ctx context.Context, buf, prefix []byte, next NextUp) []Left {
	st := r.state.Load()
	if st == nil || st.ring.Len() == 0 {
		return []Left{{Data: buf, Err: ErrNoMembers}}
	}
	var pick func(h uint64) int
	if next != nil {
		down := func(member string) bool {
			i := st.ring.Index(member)
			return i >= 0 && st.down(i)
		}
		pick = func(h uint64) int {
			i := st.ring.Index(next(h, down))
			if i >= 0 && st.down(i) {
				return -1
			}
			return i
		}
	}
	// apart leaves the traces next sends to no member (ErrNoNextUp) and
	// returns the rest of data, nil when nothing is left.
	var nowhere []Left
	apart := func(data []byte, member string) []byte {
		none, rest, _, _, err := Partition(data, func(h uint64) bool { return pick(h) < 0 })
		if err != nil || none == nil {
			return data
		}
		nowhere = append(nowhere, Left{Member: member, Data: none, Err: ErrNoNextUp})
		return rest
	}
	if pick != nil && slices.ContainsFunc(st.members, func(m *member) bool { return m.down.Load() }) {
		// A member down already: its traces next sends nowhere are
		// left, not the whole of buf for want of a member.
		if buf = apart(buf, ""); buf == nil {
			return nowhere
		}
	}
	left, err := r.routeNow(ctx, st, buf, prefix, pick)
	if err != nil {
		return append(nowhere, Left{Data: buf, Err: err})
	}
	// Each round fails over the parts of members its sends found down;
	// one not found down ends it, so at most one round per member.
	for range st.members {
		var again, down []Left
		for _, l := range left {
			if st.members[l.member].down.Load() && r.state.Load() == st {
				down = append(down, l)
			} else {
				again = append(again, l)
			}
		}
		if len(down) == 0 {
			break
		}
		for _, l := range down {
			data := l.Data
			if pick != nil {
				if data = apart(data, l.Member); data == nil {
					continue
				}
			}
			more, err := r.routeNow(ctx, st, data, prefix, pick)
			if err != nil {
				// No other member up: l stays left, for its member's reason.
				again = append(again, Left{Member: l.Member, Data: data, Err: l.Err, member: l.member})
				continue
			}
			again = append(again, more...)
		}
		left = again
	}
	return append(left, nowhere...)
}

// routeNow splits buf over st's members up (by next, when set, for the
// traces of members down) and sends each its part at once, in parallel. It fails, sending nothing, when buf is malformed or
// some span has no member up.
func (r *Router) routeNow(ctx context.Context, st *state, buf, prefix []byte, next func(uint64) int) ([]Left, error) {
	s := r.splitters.Get().(*splitter)
	s.maxBytes = r.cfg.MaxRequestBytes
	parts, ok, err := s.split(buf, &targets{ring: st.ring, down: st.down, strict: true, prefix: prefix, next: next})
	s.batch.Reset() // do not keep buf reachable from the pool
	r.splitters.Put(s)
	switch {
	case err != nil:
		return nil, consumererror.NewPermanent(fmt.Errorf("split traces by member: %w", err))
	case !ok:
		return nil, errAllDown
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() { errs[i] = st.members[p.member].sendNow(ctx, p.data) })
	}
	wg.Wait()
	var left []Left
	for i, p := range parts {
		m := st.members[p.member]
		if errs[i] != nil {
			left = append(left, Left{Member: m.addr, Data: p.data[len(prefix):], Err: errs[i], member: p.member})
			continue
		}
		r.obs.Routed(ctx, m.addr, p.spans, p.rerouted)
		putBuffer(p.data)
	}
	return left, nil
}

// sendNow is SendNow to m.
func (m *member) sendNow(ctx context.Context, data []byte) error {
	m.closing.RLock()
	closed := m.closed
	m.closing.RUnlock()
	if closed {
		return fmt.Errorf("member %s: %w", m.addr, errMemberClosed)
	}
	return m.sendDirect(ctx, data)
}

// sendDirect sends data to m at once, not through its queue (which may be
// closed: a failover while the router shuts down), within the send
// timeout, ctx and Shutdown's deadline. A member found down by it, or
// hung, is marked down.
func (m *member) sendDirect(ctx context.Context, data []byte) error {
	if m.helper == nil || m.down.Load() {
		return fmt.Errorf("member %s is down", m.addr)
	}
	if m.stopped() {
		return fmt.Errorf("member %s: %w", m.addr, errMemberClosed)
	}
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	start := m.r.since()
	err := m.sendRetrying(ctx, [][]byte{data})
	if err != nil && m.r.cfg.Downgrade != nil && status.Code(err) == codes.InvalidArgument {
		if older := m.r.cfg.Downgrade(data); older != nil {
			err = m.sendRetrying(ctx, [][]byte{older})
		}
	}
	_, hung := m.sent(start, err)
	if err == nil {
		return nil
	}
	if (isDown(err) || hung) && !m.stopped() {
		m.markDown(err)
	}
	return fmt.Errorf("send to %s: %w", m.addr, err)
}
