package router

// MemberState is a member as the router sees it now.
type MemberState struct {
	Addr string
	// Down: the member is marked down and probed; its traces go to the
	// next member up on the ring.
	Down bool
}

// MemberStates appends the current members, in ring order, to dst and
// returns it; nothing before the first member set. It is safe to call
// concurrently with everything else (the status page calls it).
func (r *Router) MemberStates(dst []MemberState) []MemberState {
	s := r.state.Load()
	if s == nil {
		return dst
	}
	for i, m := range s.members {
		dst = append(dst, MemberState{Addr: m.addr, Down: s.down(i)})
	}
	return dst
}

// Down reports whether member is in the set and marked down: its traces go
// to the next member up in hash order.
func (r *Router) Down(member string) bool {
	s := r.state.Load()
	if s == nil {
		return false
	}
	i := s.ring.Index(member)
	return i >= 0 && s.down(i)
}
