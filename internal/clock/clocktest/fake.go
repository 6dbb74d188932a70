// Package clocktest has a manually advanced clock for tests.
package clocktest

import (
	"sync"
	"time"

	"github.com/tailsift/tailsift/internal/clock"
)

// Fake is a clock that moves only when Advance is called. Its timers fire,
// without blocking, when Advance passes their deadline.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now implements clock.Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer implements clock.Clock.
func (f *Fake) NewTimer(d time.Duration) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &timer{f: f, c: make(chan time.Time, 1), at: f.now.Add(d), armed: true}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the clock forward by d and fires the timers that are due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.timers {
		if t.armed && !t.at.After(f.now) {
			t.armed = false
			select {
			case t.c <- f.now:
			default:
			}
		}
	}
}

type timer struct {
	f     *Fake
	c     chan time.Time
	at    time.Time
	armed bool
}

func (t *timer) C() <-chan time.Time { return t.c }

func (t *timer) Reset(d time.Duration) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.at, t.armed = t.f.now.Add(d), true
	select { // drop a stale tick, as time.Timer does since Go 1.23
	case <-t.c:
	default:
	}
}

func (t *timer) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.armed = false
}
