package tracebuf

import (
	"math"
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
// moving the records of the buffered and held traces, and unmaps the idle
// chunks it may not keep. When the buffer has drained after a spike (it holds
// a sixteenth of the shard's budget or less, and the arena has shrunk by a
// quarter of it or more since its peak), the arena lets its idle chunks go,
// and the Go heap is asked to give back what the spike left too.
func (s *shard) compactArena() {
	s.settleStep()
	a := s.usage.arena
	if !s.arenaDue() {
		if len(a.idle) > 0 {
			a.trimIdle(s.now())
		}
		return
	}
	defer func() {
		if s.drained() && a.high-(a.mapped-a.idleBytes) >= s.usage.budget/4 {
			a.releaseIdle(len(a.idle))
			a.high = a.mapped
			s.shrink()
			freeOSMemory(s.deps.clock.Now())
			s.settle = settling{next: s.now() + int64(settleTick)}
		}
	}()
	s.compactNow()
}

// arenaDue reports whether the arena is due for compaction: its spare bytes
// may take what the budget leaves over the records (arena.due).
func (s *shard) arenaDue() bool {
	return s.usage.arena.due(s.usage.budget - s.usage.bytes())
}

// compactNow moves the records of the buffered and held traces into other
// chunks and lets the old ones go.
func (s *shard) compactNow() {
	s.usage.arena.compact(s.now(), func(move func(*[]byte)) {
		for _, t := range s.traces {
			t.eachSegment(move)
		}
		for _, t := range s.held.byID {
			t.eachSegment(move)
		}
	})
}

// drained reports whether the shard holds a sixteenth of its budget or less.
func (s *shard) drained() bool { return s.usage.arena.inUse() <= s.usage.budget/16 }

// settling is what a shard does after a spike has drained: it wakes every
// settleTick while it stays drained, unmaps the arena's chunks once no
// record is in use, lets its dropped filter age out (see
// dropAge), and asks the Go heap to give back again what the end of the
// spike left (the last decisions, exports and scrapes make garbage that the
// next collection, with GOGC=100, would leave in RSS for minutes): at 1, 2,
// 4 and 8 ticks, and whenever the filter lets a table of a MiB or more go.
type settling struct {
	next  int64 // when the shard wakes to settle next; 0: not settling
	ticks int
}

// wake is when the shard must wake to settle, or math.MaxInt64.
func (st *settling) wake() int64 {
	if st.next == 0 {
		return math.MaxInt64
	}
	return st.next
}

// settleTick is how often a settling shard wakes.
const settleTick = 5 * time.Second

// settleTicks is how long a shard settles at least, in ticks; it goes on
// while its dropped filter holds IDs.
const settleTicks = 8

// settleFreeBytes is the least a table the dropped filter lets go must
// weigh for the heap to be asked to give it back at once.
const settleFreeBytes = 1 << 20

// settleStep does what settling asks when its time has come.
func (s *shard) settleStep() {
	now := s.now()
	st := &s.settle
	if st.next == 0 || now < st.next {
		return
	}
	if !s.drained() { // the load is back
		*st = settling{}
		return
	}
	st.ticks++
	if s.usage.arena.inUse() == 0 && len(s.usage.arena.chunks) > 0 {
		// Nothing to move: the chunks the last traces left go (the arena
		// keeps up to its reserve of spare bytes while it is in use).
		s.compactNow()
	}
	freed := s.decided.dropped.expire(now)
	if freed >= settleFreeBytes || st.ticks&(st.ticks-1) == 0 && st.ticks <= settleTicks {
		// The decisions and exports since the drain grew the heap state
		// again (output batch, encoder scratch): let it go before the GC.
		s.shrink()
		freeOSMemory(s.deps.clock.Now())
	}
	if st.ticks >= settleTicks && !s.decided.dropped.aging() {
		*st = settling{}
		return
	}
	st.next = now + int64(settleTick)
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
// keep their peak size, so the trace maps are copied, an empty output batch
// lets its buffer go, the encoder its scratch (its map of span IDs grew to
// the largest trace kept), and the arena its compaction's scratch.
func (s *shard) shrink() {
	s.traces = copyMap(s.traces)
	if s.held.byID != nil {
		s.held.byID = copyMap(s.held.byID)
	}
	if s.out.since < 0 {
		s.out.buf = nil
	}
	s.enc = encoder{seen: make(map[seenKey][]byte)}
	s.usage.arena.moves = nil
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
