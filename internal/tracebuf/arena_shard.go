package tracebuf

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// arenaReserve is the share of a shard's budget its arena may hold as spare
// bytes (free blocks) before it gives them back: the traces' records get the
// rest, so that what the arena really holds stays within the budget.
const arenaReserve = 8 // 1/8 of the budget

// compactArena gives the arena's spare bytes back to the OS when it is due,
// moving the records of the buffered and held traces. When the buffer has
// drained after a spike (it holds a sixteenth of the shard's budget or less,
// and the arena has shrunk by a quarter of it or more since its peak), the Go
// heap is asked to give back what the spike left too.
func (s *shard) compactArena() {
	if !s.usage.arena.due() {
		return
	}
	defer func() {
		if s.usage.arena.inUse() <= s.usage.budget/16 && s.usage.arena.high-s.usage.arena.mapped >= s.usage.budget/4 {
			s.usage.arena.high = s.usage.arena.mapped
			s.shrink()
			freeOSMemory(s.deps.clock.Now())
		}
	}()
	s.usage.arena.compact(func(move func(*[]byte)) {
		for _, t := range s.traces {
			move(&t.recs)
		}
		for _, t := range s.held.byID {
			move(&t.recs)
		}
	})
}

// overBudget reports whether the buffered traces take more than their
// share of the shard's budget, which the arena's reserve is not.
func (s *shard) overBudget() bool {
	return s.usage.bytes() > s.usage.budget-s.usage.arena.reserve
}

// reportArena sends the change of the arena's mapped bytes to the observer.
func (s *shard) reportArena() {
	if d := s.usage.arena.mappedDelta(); d != 0 {
		s.deps.observer.Mapped(d)
	}
}

// shrink lets go of what the shard's heap state grew to in a spike: Go maps
// keep their peak size, so the trace maps are copied, and an empty output
// batch lets its buffer go.
func (s *shard) shrink() {
	s.traces = copyMap(s.traces)
	if s.held.byID != nil {
		s.held.byID = copyMap(s.held.byID)
	}
	if s.out.since < 0 {
		s.out.buf = nil
	}
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// lastFreeOS is when freeOSMemory last ran, in Unix nanoseconds.
var lastFreeOS atomic.Int64

// freeOSInterval is how often at most freeOSMemory runs, process-wide: the
// shards of a buffer drain at about the same time, and one call serves them
// all.
const freeOSInterval = time.Second

// freeOSMemory runs two garbage collections and returns the free heap to
// the OS, at most once per freeOSInterval. Without it, the garbage of a
// spike (queued requests, decoded batches, pooled receive buffers) would
// stay in RSS until the next collection, which an idle process runs only
// every two minutes. The first collection moves sync.Pool contents to their
// victim caches, the second (debug.FreeOSMemory) frees them.
func freeOSMemory(now time.Time) {
	last := lastFreeOS.Load()
	if now.UnixNano()-last < int64(freeOSInterval) || !lastFreeOS.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	freeOS()
}

// freeOS is what freeOSMemory runs; tests count its calls.
var freeOS = func() {
	runtime.GC()
	debug.FreeOSMemory()
}
