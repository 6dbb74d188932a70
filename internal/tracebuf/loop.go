package tracebuf

import (
	"context"
	"math"
	"math/bits"
	"time"
)

// A shard's work runs under its lock (shard.mu), in its goroutine or in an
// Ingest call that finds the lock free (tryIngest): the call then takes its
// spans in itself, with the request's bytes still in its cache, and no
// goroutine is woken for it. The goroutine keeps what may block or wait:
// the output to the next consumer, compaction, the timer's
// wake-ups and the messages other than requests.

// handOn gives each shard of req its spans: a shard no other goroutine
// works on takes them in this goroutine (shard.tryIngest), a busy one gets
// them queued, after a second try once the others are done. Calls on
// several goroutines start at different shards (by the request's length),
// so that they do not all contend for the first.
func (b *Buffer) handOn(req *request) {
	n := len(req.per)
	start := len(req.buf) % n
	var busy uint64 // shards to try again (the first 64 after start)
	for k := range n {
		sh := (start + k) % n
		if idx := req.per[sh]; len(idx) > 0 && !b.tryIngest(sh, req, idx) {
			if k < 64 {
				busy |= 1 << k
			} else {
				b.shards[sh].post(message{req: req, spans: idx})
			}
		}
	}
	for ; busy != 0; busy &= busy - 1 {
		sh := (start + bits.TrailingZeros64(busy)) % n
		if idx := req.per[sh]; !b.tryIngest(sh, req, idx) {
			b.shards[sh].post(message{req: req, spans: idx}) // never blocks: room was reserved
		}
	}
}

// tryIngest is shard.tryIngest, which gives back the queue slot reserved
// for the message when it takes the spans in.
func (b *Buffer) tryIngest(sh int, req *request, idx []int32) bool {
	if b.shards[sh].tryIngest(req, idx) {
		b.taken(sh)
		return true
	}
	return false
}

// run is the shard's goroutine. It ends with the final flush, when Shutdown
// asks for it or, cut short, when ctx ends, and returns what the next
// consumer refused then. It holds mu while it works, not while it waits.
func (s *shard) run(ctx context.Context) error {
	s.mu.Lock()
	s.makeTimer()
	s.mu.Unlock()
	defer func() {
		s.caller.stop()
		s.wake.timer.Stop()
		s.usage.arena.close() // no record is read once the shard stops
		s.reportArena()
		s.mu.Unlock()
	}()
	for {
		fired := false
		select {
		case <-s.notify:
		case <-s.wake.timer.C():
			fired = true
		case <-s.kick:
		case <-ctx.Done():
			s.mu.Lock()
			// What was accepted is decided too (flushAll takes in the rest).
			for m, ok := s.next(); ok && m.flush == nil; m, ok = s.next() {
				s.handle(ctx, m)
			}
			return s.flushAll(ctx) // hands nothing on: counts the kept spans
		}
		s.mu.Lock()
		if fired {
			s.wake.armed = false
		}
		// What is queued now, not what arrives meanwhile: the loop's
		// timers and reports run between batches.
		for n := len(s.in) + 1; n > 0; n-- {
			m, ok := s.next()
			if !ok {
				break
			}
			if m.flush != nil {
				return s.flushAll(m.flush.ctx)
			}
			s.handle(ctx, m)
		}
		s.tend(ctx, false, fired)
		s.mu.Unlock()
	}
}

// tend is the goroutine's work after a batch of messages or a wake-up:
// the decisions that are due, the output batch when it is due (with all:
// whatever it holds), compaction, the timer, the reports and the store's
// records. fired is set when the timer woke the goroutine: the output batch
// then goes too if it would be due by the next grid instant, so that the
// traces decided at this wake-up are handed on at it, and the process does
// not wake again for them.
func (s *shard) tend(ctx context.Context, all, fired bool) {
	now := s.now()
	s.expire(ctx, now)
	if o := &s.out; o.since >= 0 {
		at := s.outFlushAt()
		whole := all || now >= at || fired && at <= now+gridFor(o.timeout)
		if whole || o.due() {
			s.flushOutAsync(ctx, whole)
		}
	}
	// compactArena may start settling (a drained spike) or end it: the
	// timer is armed after it, so that a shard whose last traces were
	// decided here still wakes to settle.
	s.compactArena()
	s.rearm(now)
	s.report()
	s.due.report(s.deps.observer, now, all)
	s.flushStore()
}

// next takes the next message to run, with mu held: the head an Ingest
// call left, else the queue's first; ok is false when there is none.
func (s *shard) next() (m message, ok bool) {
	if s.hasHead {
		m, s.head, s.hasHead = s.head, message{}, false
		return m, true
	}
	select {
	case m = <-s.in:
		s.deps.taken(s.id)
		return m, true
	default:
		return message{}, false
	}
}

// makeTimer makes the shard's wake-up timer, stopped, unless it exists.
// Buffer.Start makes it before the goroutine starts: an Ingest call may
// rearm it (tryIngest) before the goroutine runs.
func (s *shard) makeTimer() {
	if s.wake.timer == nil {
		s.wake.timer = s.deps.clock.NewTimer(time.Hour)
		s.wake.timer.Stop()
	}
}

// handle runs a message other than the final flush.
func (s *shard) handle(ctx context.Context, m message) {
	switch {
	case m.req != nil:
		s.ingest(ctx, m.req, m.spans)
	case m.sync != nil:
		s.tend(ctx, true, false)
		close(m.sync)
	case m.run != nil:
		m.run(ctx, s)
	}
}

// post queues m and wakes the goroutine. The caller has reserved its room
// (Buffer.room), so it never blocks.
func (s *shard) post(m message) {
	s.in <- m
	s.wakeUp(s.notify)
}

// wakeUp signals c (capacity 1) unless a signal is pending already.
func (s *shard) wakeUp(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// tryIngest takes in a message's spans in the calling goroutine, as the
// shard's goroutine would, unless another goroutine works on the shard (mu
// is held). It first runs the requests queued before (so that it never
// overtakes one), and those queued meanwhile after. It reports whether it
// took the spans in; if not, the caller posts them.
//
// The request's bytes and its scan are still in the caller's cache, and an
// idle goroutine is not woken for each request. What may block or take
// long is left to the goroutine, woken through kick: handing on the output
// batch (the next consumer may block or be retried for seconds, and the
// Ingest call's client must not wait for it), compaction, and the messages
// other than requests. The store's records are queued here (never blocks).
func (s *shard) tryIngest(req *request, idx []int32) bool {
	if !s.mu.TryLock() {
		return false
	}
	// The shard's work here never reaches the next consumer (inline), which
	// is the only thing a shard's context is for.
	ctx := context.Background()
	s.inline = true
	ok := s.drainRequests(ctx)
	if ok {
		s.ingest(ctx, req, idx)
		s.drainRequests(ctx)
		now := s.now()
		s.expire(ctx, now)
		s.rearm(now)
		s.report()
		s.due.report(s.deps.observer, now, false)
	}
	// The decisions taken here go to the store now: handing them on never
	// blocks (Store.enqueue), and the writer, woken for this request's
	// spans, takes them in the same block. Left to the goroutine, they
	// cost a wake-up of it and a block of their own for nearly every
	// request, with the store on only.
	s.flushStore()
	s.inline = false
	o := &s.out
	wake := o.since >= 0 && (o.due() || s.now() >= s.outFlushAt()) ||
		s.arenaDue()
	s.mu.Unlock()
	if !ok {
		s.wakeUp(s.notify) // for the head
	} else if wake {
		s.wakeUp(s.kick)
	}
	return ok
}

// drainRequests runs, with mu held, the requests queued now, up to one
// that only the goroutine runs, which it leaves as the head. It reports
// whether the queue is empty (false: a head waits).
func (s *shard) drainRequests(ctx context.Context) bool {
	for n := len(s.in); n > 0 && !s.hasHead; n-- {
		m, ok := s.next()
		if !ok {
			break
		}
		if m.req == nil {
			s.head, s.hasHead = m, true
			break
		}
		s.ingest(ctx, m.req, m.spans)
	}
	return !s.hasHead
}

// outFlushAt is when the output batch is handed on, or math.MaxInt64 when
// it is empty: the last instant of the wake-up grid (gridFor its timeout)
// within its timeout, so that it never waits longer than
// output.batch_timeout and its wake-up is one the quiet classes share.
func (s *shard) outFlushAt() int64 {
	o := &s.out
	if o.since < 0 {
		return math.MaxInt64
	}
	g := gridFor(o.timeout)
	return max(o.since, o.next()/g*g) // next: since + timeout
}

// rearm sets the timer for the next rule to fire, rounded up to the
// wake-up grid (completion.next; the output batch on the grid within its
// timeout, outFlushAt; held traces and settling on the wakeGridMax grid), unless it is
// already set for that time or earlier. Nothing due, no timer: an idle
// shard does not wake.
func (s *shard) rearm(now int64) {
	next := min(s.due.next(), s.outFlushAt(),
		roundUp(min(s.held.next(), s.settle.wake()), wakeGridMax))
	w := &s.wake
	if next == math.MaxInt64 {
		if w.armed { // what it was set for is decided: do not wake for nothing
			w.timer.Stop()
			w.armed = false
		}
		return
	}
	if w.armed && w.armedAt <= next {
		return
	}
	w.timer.Reset(time.Duration(max(next-now, 0)))
	w.armed, w.armedAt = true, next
}
