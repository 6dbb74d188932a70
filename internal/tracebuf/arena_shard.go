package tracebuf

// arenaReserve is the share of a shard's budget its arena may hold as spare
// bytes (free blocks) before it gives them back: the traces' records get the
// rest, so that what the arena really holds stays within the budget.
const arenaReserve = 8 // 1/8 of the budget

// compactArena gives the arena's spare bytes back to the OS when it is due,
// moving the records of the buffered and held traces.
func (s *shard) compactArena() {
	if !s.arena.due() {
		return
	}
	s.arena.compact(func(move func(*[]byte)) {
		for _, t := range s.traces {
			move(&t.recs)
		}
		for _, t := range s.held {
			move(&t.recs)
		}
	})
}

// overBudget reports whether the buffered traces take more than their
// share of the shard's budget, which the arena's reserve is not.
func (s *shard) overBudget() bool {
	return s.used+s.groups.bytes > s.budget-s.arena.reserve
}

// reportArena sends the change of the arena's mapped bytes to the observer.
func (s *shard) reportArena() {
	if d := s.arena.mappedDelta(); d != 0 {
		s.b.set.Observer.Mapped(d)
	}
}
